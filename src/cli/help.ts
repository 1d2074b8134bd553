/**
 * `flatmesh <command> --help`: each command's options with their defaults. A command without an
 * entry here gets its line of the overview (`fallback`), so `--help` never runs a command.
 *
 *   commandHelp('launch', USAGE)   // the launch options
 */

const EXPERIMENT = `experiment options (every field of the experiment has a default; \`flatmesh config show\` prints them):
  -c, --config F        experiment file (YAML or JSON), or a preset
  -n, --nodes N         number of nodes (default 8)
  -r, --rounds R        communication rounds (default 40)
      --seed S          run seed: every random choice derives from it (default 1)
  -t, --topology G      base graph: a file of topologies/ or a generator such as ring, er:p=0.4, torus
      --set path=value  override any field, e.g. --set faults.loss.p=0.1 (repeatable)
  -o, --out DIR         run directory (default runs/<run id>)
      --json            print summary.json instead of the text summary`;

const HELP: Record<string, string> = {
  launch: `usage: flatmesh launch [options]

N real node processes on this machine, with live progress; Ctrl-C stops every node. Writes
DIR/config.json, roster.json, nodes/<i>/{metrics.jsonl,checkpoint.bin,end.json,node.log} and
summary.json (also when the run ends early: completed false, and why).

${EXPERIMENT}
      --resume          continue the run in an existing --out DIR (only with the same experiment:
                        a different one is refused, naming each field that differs); without it an
                        existing, non-empty DIR is refused and left untouched
  -q, --quiet           no live progress
      --dashboard       serve the live dashboard on 127.0.0.1 (URL with its token on stderr)
      --port P          the dashboard's port (default: any free port)
      --dashboard-readonly  the dashboard without controls (implies --dashboard)
      --nodes-per-process K  run the nodes in processes of K (default 1): each node keeps its own
                        host, keys, records and log; a planned crash of one is a soft crash (its
                        host stops, it restarts in the same process); a stall freezes all K

a node that dies unplanned is restarted from its checkpoint (faults.onCrash: restart | continue |
abort, faults.maxRestarts per node, default 3).
`,
  sim: `usage: flatmesh sim [options]

The same experiment, same round engine and wire codec, all nodes in one process over the in-memory
transport; deterministic.

${EXPERIMENT}
      --replay RUN_DIR  a launched run's experiment, with the faults injected into it by hand
                        (its events.jsonl): kills as crashes, partitions until their heal, loss,
                        stragglers and byzantine nodes from the same rounds
`,
  watch: `usage: flatmesh watch RUN_DIR [--port P]

The live dashboard of a run directory on 127.0.0.1, read-only: it follows a run that another launch
is still writing (its events.jsonl and nodes/<i>/metrics.jsonl), or replays a finished one with a
round slider. Ctrl-C stops it.

  --port P        the dashboard's port (default: any free port)
`,
  node: `usage: flatmesh node --config F --id I --dir D [--roster R] [--listen ADDR] [--run-id ID]

One node process, e.g. on another machine. Prints its progress on stderr and, when it ends, writes
its end record D/end.json (merge the nodes of several machines with \`flatmesh collect\`). A
checkpoint in D written under a different experiment is refused, naming the fields that differ.

  --config F      the experiment (the run's config.json, or any experiment file)
  --id I          this node's index (0..nodes-1)
  --dir D         node directory: peer.key, checkpoint.bin, metrics.jsonl, end.json
  --roster R      roster file (from \`flatmesh roster\`); without it the roster comes from a launcher
  --listen ADDR   multiaddr to listen on (default: this node's address in the roster)
  --run-id ID     run id (default: the experiment's run.id)
`,
  roster: `usage: flatmesh roster --nodes N --out DIR [--hosts H1,H2] [--base-port P] [--run-id ID]

Keys and a roster (node -> peer id -> address) for a run across machines: DIR/roster.json and
DIR/nodes/<i>/peer.key. Copy node i's directory and the roster to the machine of node i.

  --nodes N         number of nodes
  --out DIR         where to write the roster and the node directories
  --hosts H1,H2     hosts, assigned to nodes round-robin (default 127.0.0.1)
  --base-port P     node i listens on P + i (default 4100)
  --run-id ID       run id
`,
  collect: `usage: flatmesh collect DIR... --out OUT

One run directory from the node directories of a run that ran on several machines: copies each
node's metrics.jsonl, checkpoint.bin and end.json (never its key) to OUT/nodes/<i>/ and writes
OUT/config.json and OUT/summary.json. Each DIR is a node directory or a directory with nodes/<i>/.
The records must come from one run and one experiment.

  -o, --out OUT     the new run directory (must not exist, or be empty)
      --json        print summary.json instead of the text summary
`,
  sweep: `usage: flatmesh sweep --config F|PRESET [--resume] [--only key=value,seed=N] [--json] [--quiet]

A grid of experiments x seeds, in the simulator or as processes, resumable; a table with means and
95% confidence intervals.

  -c, --config F    the sweep file, or a preset name
      --resume      skip the cells already done
      --only K=V,.. run only the matching cells
      --json        the table as JSON
  -q, --quiet       no progress
`,
  topology: `usage: flatmesh topology inspect FILE [--budget Cb] [--json]
       flatmesh topology draw FILE [--budget Cb] --out graph.svg
       flatmesh topology gen KIND --n N [--p P --k K --radius R --beta B --rows R --cols C] [--seed S] [--name NAME]

  inspect   nodes, edges, matchings, lambda2, vanilla and MATCHA mixing, messages per round
  draw      the graph as SVG, one colour per matching
  gen       a generated graph as a topology file (ring, torus, grid, complete, star, er, geometric,
            regular, small-world, hypercube, exponential)
  --budget Cb   MATCHA communication budget (default 0.5)
`,
  data: `usage: flatmesh data inspect [--dataset D] [--partition P] [--nodes N] [--seed S] [--json] [--data-dir DIR]
       flatmesh data fetch fashion-mnist|cifar10 [--data-dir DIR]

  inspect   each node's shard size and class histogram (defaults: digits, dirichlet:0.5, 8 nodes)
  fetch     download a data set into the data directory ($FLATMESH_DATA or ~/.cache/flatmesh)
`,
  doctor: `usage: flatmesh doctor [--json]

The tensor backend in use and why, versions, and a throughput probe.
`,
  config: `usage: flatmesh config schema
       flatmesh config show [--config F] [--set path=value]

  schema    the JSON schema of experiment files (for editors)
  show      the resolved experiment: every field, defaults included
`,
  report: `usage: flatmesh report RUN_DIR|SWEEP_DIR [more RUN_DIRs] [--out F.html] [--png DIR]

One self-contained HTML page of plots (works offline): a run's accuracy, loss, consensus distance,
message fates, faults, time per phase, topology, nodes and flatness results; a sweep's table with
95% CIs and a plot along each axis; several runs overlaid. Each figure's Vega-Lite spec is saved
beside the page in figures/. launch, sim --out and sweep write DIR/report.html when they finish.

  -o, --out F.html   the page (default DIR/report.html; several runs: compare-report.html next to
                     the first)
      --png DIR      also one PNG per figure in DIR
`,
};

/** `--help` or `-h` among a command's arguments (before a `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  const own = end < 0 ? args : args.slice(0, end);
  return own.includes('--help') || own.includes('-h');
}

/** The help of `cmd`: its entry here, else its line of the overview `usage`. */
export function commandHelp(cmd: string, usage: string): string | undefined {
  const own = HELP[cmd];
  if (own) return own;
  const line = usage.split('\n').find((l) => l.trimStart().startsWith(`${cmd} `));
  return line ? `usage: flatmesh ${line.trim()}\n` : undefined;
}
