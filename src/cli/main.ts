console.log('flatmesh');
