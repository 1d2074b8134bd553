/**
 * learn/: models over named parameters, flat parameter vectors, the local optimizers (SGD, SAM,
 * ASAM), learning-rate schedules with the SWA cycle, node-local SWA, local training and evaluation.
 * Pure and deterministic given a seed; knows nothing about processes or sockets.
 *
 *   const model = createModel({ kind: 'mlp' }, train.shape, train.classes, seed);
 *   const opt = createOptimizer({ kind: 'asam', momentum: 0, weightDecay: 4e-4, rho: 0.7, eta: 0.2 }, model.params);
 *   const trainer = new LocalTrainer({ model, optimizer: opt, data: train, indices, batchSize: 32, seed, node });
 *   trainer.train(10, learningRate({ kind: 'constant' }, 0.05, round, rounds, swa));
 *   evaluate(model, test);
 */
export { type EvalResult, evaluate, evaluateFlat } from './evaluate.js';
export { modelSignature, type ParamSlot, paramLayout, readFlat, writeFlat } from './flat.js';
export { crossEntropy, oneHot } from './loss.js';
export {
  createModel,
  DEFAULT_MLP_HIDDEN,
  type Model,
  type ModelParam,
  type ModelSpec,
  type ParamKind,
} from './model.js';
export {
  createOptimizer,
  type SharpnessObserver,
  validateOptimizerSpec,
} from './optim/optimizer.js';
export { QuasiGlobalMomentum } from './optim/quasi-global.js';
export { SgdUpdate } from './optim/sgd.js';
export type { LocalOptimizer, OptimizerParam, OptimizerSpec } from './optim/types.js';
export {
  DEFAULT_SWA,
  type FinishSpec,
  isGossipOnlyRound,
  isSwaCollectRound,
  type LrSchedule,
  learningRate,
  quasiGlobalRate,
  type SwaSpec,
  scheduleRate,
  swaStartRound,
  validateSwaSpec,
} from './schedule.js';
export { SwaAverage, type SwaState } from './swa.js';
export { isEvalRound, isTailRound, TailMean } from './tail.js';
export { nextCorrection, readCorrection, roundTracker, writeCorrection } from './tracking.js';
export {
  checkTrainArgs,
  LocalTrainer,
  type LocalTrainerOptions,
  type RoundTrainer,
  type TrainerRngState,
  type TrainResult,
} from './trainer.js';
