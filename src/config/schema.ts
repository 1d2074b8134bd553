/**
 * The experiment schema: one zod schema gives the TypeScript types, every default, the validation
 * (errors name the path and the legal range) and a JSON schema for editors
 * (`flatmesh config schema`). Every field has a default, so `{}` is a complete experiment: the
 * default run of `npm start`.
 *
 *   const cfg = parseExperiment(yamlOrJsonObject);   // throws ConfigErrors listing every problem
 */
import { z } from 'zod';

const between = (min: number, max: number) => `must be between ${min} and ${max}`;
const num = (min: number, max: number) =>
  z
    .number({ error: `must be a number between ${min} and ${max}` })
    .gte(min, { error: between(min, max) })
    .lte(max, { error: between(min, max) });
const int = (min: number, max: number) =>
  z
    .number({ error: `must be an integer between ${min} and ${max}` })
    .int({ error: `must be an integer between ${min} and ${max}` })
    .gte(min, { error: `must be an integer between ${min} and ${max}` })
    .lte(max, { error: `must be an integer between ${min} and ${max}` });
const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.map((v) => `'${v}'`).join(', ')}` });

export const MAX_NODES = 1024;

const runSchema = z
  .object({
    /** Run identifier; also the control topic name. Default: derived from the seed and time. */
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'must be 1-64 characters of A-Z a-z 0-9 . _ -' })
      .optional(),
    /** The run seed: every random choice derives from it. */
    seed: int(0, 2 ** 31 - 1).default(1),
    /** Communication rounds. */
    rounds: int(1, 1_000_000).default(40),
    /** Output directory (summary, per-node metrics, checkpoints). Default: runs/<id>. */
    out: z.string().min(1).optional(),
  })
  .strict()
  .prefault({});

const topologySchema = z
  .object({
    /**
     * A topology file (`*.json`, see topologies/) or a generator: `ring`, `complete`, `star`,
     * `torus`, `grid`, `er:p=0.4`, `geometric:radius=0.5`, `regular:k=3`, `small-world:k=4,beta=0.2`,
     * `hypercube`, `exponential`. Generated graphs take the node count from `nodes`.
     */
    graph: z.string().min(1).default('er:p=0.5'),
    /** `matcha`: matchings switched on at random with optimized probabilities; `vanilla`: all edges every round. */
    sampler: oneOf(['matcha', 'vanilla'] as const).default('matcha'),
    /** MATCHA communication budget Cb: expected fraction of the matchings active per round. */
    budget: num(0.01, 1).default(0.5),
  })
  .strict()
  .prefault({});

const dataSchema = z
  .object({
    dataset: oneOf(['digits', 'synthetic', 'fashion-mnist', 'cifar10'] as const).default('digits'),
    /** `iid`, `dirichlet:ALPHA` (ALPHA >= 0; 0 = one class per node) or `shards:K`. */
    partition: z.string().min(1).default('dirichlet:0.5'),
    /** Cap on the training-set size (after a seeded shuffle); 0 = all. */
    limit: int(0, 10_000_000).default(0),
    /** Directory holding downloaded data sets. Default: $FLATMESH_DATA or ~/.cache/flatmesh. */
    dir: z.string().optional(),
    /** Synthetic(alpha, beta) of the FedProx paper. */
    synthetic: z
      .object({
        alpha: num(0, 100).default(1),
        beta: num(0, 100).default(1),
        samples: int(100, 10_000_000).default(6000),
        dim: int(2, 10_000).default(60),
        classes: int(2, 1000).default(10),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

const modelSchema = z
  .object({
    kind: oneOf(['logreg', 'mlp', 'cnn-small', 'cnn-fedavg'] as const).default('mlp'),
    /** Hidden layer sizes of `mlp`. */
    hidden: z.array(int(1, 100_000)).min(1).max(16).default([200, 200]),
  })
  .strict()
  .prefault({});

const trainSchema = z
  .object({
    optimizer: oneOf(['sgd', 'sam', 'asam'] as const).default('asam'),
    /** Base learning rate (the default suits the embedded digits data; the paper used 0.01-0.05). */
    lr: num(0, 10).default(0.2),
    momentum: num(0, 0.999).default(0),
    weightDecay: num(0, 1).default(4e-4),
    /** SAM/ASAM neighbourhood radius (FedASAM: 0.7, FedSAM: 0.1). */
    rho: num(0, 10).default(0.5),
    /** ASAM's eta in T_w = |w| + eta. */
    eta: num(0, 10).default(0.2),
    batchSize: int(1, 65_536).default(32),
    /** Minibatch steps per round. */
    localSteps: int(1, 100_000).default(10),
    schedule: oneOf(['constant', 'cosine', 'step'] as const).default('constant'),
    /**
     * Quasi-global momentum (QG-DSGDm, Lin, Karimireddy, Stich, Jaggi, ICML 2021): the momentum
     * buffer a round starts from is an average of the node's whole model change per step, gossip
     * included, instead of its own gradients only, which on non-IID data pull each node its own way.
     * Needs momentum > 0 (used as both of the paper's beta and mu).
     */
    quasiGlobalMomentum: z.boolean().default(false),
    /**
     * Gradient tracking with local steps (K-GT: Liu, Koloskova, Jaggi, Lin 2023, after DSGT: Pu &
     * Nedić 2021; Koloskova et al. 2021): every local step adds a correction c_i that tracks the
     * network's average gradient minus the node's own, so on non-IID data the nodes descend the
     * global objective instead of drifting to their own optima. The tracker travels with the model
     * (a frame carries both: twice the bytes). See src/learn/tracking.ts for what it needs.
     */
    gradientTracking: z.boolean().default(false),
    /** For `step`: multiply lr by gamma every `stepEvery` rounds. */
    stepEvery: int(1, 1_000_000).default(30),
    stepGamma: num(0, 1).default(0.1),
  })
  .strict()
  .prefault({});

/**
 * SWA defaults, shared with learn/schedule.ts. lr2 = 1e-4 is fedsam's (the paper's code, see
 * design.md); the reference PyTorch run of the Fashion-MNIST preset used 1e-3, which that preset
 * sets. The collected models barely differ: lr2 is reached only at the collection round itself.
 */
export const SWA_DEFAULTS = Object.freeze({ start: 0.75, cycle: 5, lr2: 1e-4 });

const swaSchema = z
  .object({
    enabled: z.boolean().default(true),
    /**
     * Fraction of the rounds after which SWA starts (fedsam: 0.75). The phase is whole cycles that
     * end at the last round, so it starts at this round or up to cycle - 1 rounds later.
     */
    start: z
      .number({ error: 'must be a fraction in [0, 1)' })
      .gte(0, { error: 'must be a fraction in [0, 1)' })
      .lt(1, { error: 'must be a fraction in [0, 1) (1 would leave no SWA round)' })
      .default(SWA_DEFAULTS.start),
    /** Cycle length c in rounds; the average is collected at the last round of each cycle. */
    cycle: int(1, 1_000_000).default(SWA_DEFAULTS.cycle),
    /** Learning rate at the low end of each cycle (fedsam: 1e-4). */
    lr2: num(0, 10).default(SWA_DEFAULTS.lr2),
    /**
     * Gossip the SWA averages: from the first collection on, every round each node's SWA average
     * travels with its model and is mixed like it (same rule, same weights), so the nodes' SWA
     * models approach the average of all of them instead of staying node-local. The models trained
     * are unchanged. Frames carry one more model-sized vector. Default false (node-local SWA).
     */
    gossip: z.boolean().default(false),
    /**
     * With `gossip`: the last `settle` rounds of the run only gossip (no training, no collection),
     * after the SWA phase's last collection, so the nodes' SWA models settle towards their common
     * mean. Communication only: run.rounds counts them, so add them to the training rounds wanted.
     * Default 0.
     */
    settle: int(0, 1_000_000).default(0),
  })
  .strict()
  .prefault({});

const robustSchema = z
  .object({
    kind: oneOf(['none', 'clip', 'trimmed-mean'] as const).default('none'),
    /** Clipped gossip: each neighbour's difference x_j - x_i is clipped to this L2 radius. 0 = adaptive (median of the round's distances). */
    radius: num(0, 1e9).default(0),
    /** Trimmed mean: fraction trimmed from each end, per coordinate. */
    trim: num(0, 0.49).default(0.2),
  })
  .strict()
  .prefault({});

const gossipSchema = z
  .object({
    /** `laplacian`: x_i += alpha * sum_j (x_j - x_i) (MATCHA / D-PSGD); `metropolis`; `push-sum`. */
    mixing: oneOf(['laplacian', 'metropolis', 'push-sum'] as const).default('laplacian'),
    codec: oneOf(['f32', 'f16', 'int8'] as const).default('f32'),
    /**
     * The longest a node waits for its neighbours' weights in a round (ms). Real runs wait less
     * once they have seen a few rounds: a high percentile of recent waits plus slack, capped here.
     */
    deadlineMs: int(1, 3_600_000).default(5000),
    /**
     * `lockstep`: every node mixes its neighbours' models of the same round (MATCHA's analysis).
     * `async`: each node mixes the freshest model it has from each active neighbour, at most
     * `staleness` rounds older than its own round, and waits only for a neighbour that has
     * nothing that fresh (AD-PSGD family). Not with push-sum, whose shares must be mixed once.
     */
    sync: oneOf(['lockstep', 'async'] as const).default('lockstep'),
    /** Async: how many rounds older than its own a neighbour's model may be and still be mixed. */
    staleness: int(0, 1000).default(2),
    /**
     * Account for the configured Bernoulli message loss: MATCHA's alpha is re-optimized for the
     * expected topology under loss (each matching's edges survive with probability
     * p_j * (1 - loss.p)), and push-sum splits its mass over the shares expected to arrive. Without
     * it, lost messages simply mean less mixing.
     */
    lossAware: z.boolean().default(true),
    /**
     * Mix a neighbour's model only when the round's exchange with it went through both ways: its
     * frame arrived and this node's frame to it was delivered. A message lost one way then drops
     * the edge at both ends, so each round's mixing matrix stays symmetric and doubly stochastic
     * and lost messages cannot drift the nodes' average (one-sided mixing can: the weight of a
     * lost message stays with its receiver only). Edges survive less often, (1 - loss)^2, which
     * lossAware accounts for. Lockstep laplacian or metropolis mixing only.
     */
    pairwise: z.boolean().default(false),
    robust: robustSchema,
    /**
     * Consensus finish: `rounds` gossip-only rounds (no local training) that bring the node models
     * towards their average, either the last `rounds` rounds of the run (`at: end`) or the last
     * `rounds` rounds of every SWA cycle (`at: collect`, so each collected model is a more agreed
     * one; needs SWA and rounds < swa.cycle). 0 = none.
     */
    finish: z
      .object({
        rounds: int(0, 1_000_000).default(0),
        at: oneOf(['end', 'collect'] as const).default('end'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

const linkLossSchema = z
  .object({ from: int(0, MAX_NODES - 1), to: int(0, MAX_NODES - 1), p: num(0, 1) })
  .strict();

const lossSchema = z
  .object({
    /** Probability that a directed message is dropped. */
    p: num(0, 1).default(0),
    /** `notify`: the receiver learns at once; `silent`: it waits for its deadline, like a real network. */
    mode: oneOf(['notify', 'silent'] as const).default('notify'),
    /** `bernoulli` (independent) or `gilbert-elliott` (bursty, a two-state chain per link). */
    model: oneOf(['bernoulli', 'gilbert-elliott'] as const).default('bernoulli'),
    /** Gilbert-Elliott: P(good -> bad), P(bad -> good), loss in each state. */
    goodToBad: num(0, 1).default(0.1),
    badToGood: num(0, 1).default(0.5),
    lossGood: num(0, 1).default(0),
    lossBad: num(0, 1).default(0.8),
    /** Per-link overrides of p. */
    links: z.array(linkLossSchema).default([]),
  })
  .strict()
  .prefault({});

const faultsSchema = z
  .object({
    loss: lossSchema,
    /** Added latency per message (ms), with uniform jitter of +- jitterMs. */
    delay: z
      .object({ ms: num(0, 3_600_000).default(0), jitterMs: num(0, 3_600_000).default(0) })
      .strict()
      .prefault({}),
    /** Outgoing bandwidth cap per node in megabits per second; 0 = none. */
    bandwidthMbps: num(0, 1e6).default(0),
    /** Slow-down factor per node: its training takes `factor` times as long. */
    stragglers: z
      .array(z.object({ node: int(0, MAX_NODES - 1), factor: num(1, 1000) }).strict())
      .default([]),
    /** Crash (SIGKILL) at a round; restart after `restartAfter` rounds (omit: never). */
    crashes: z
      .array(
        z
          .object({
            node: int(0, MAX_NODES - 1),
            round: int(0, 1_000_000),
            restartAfter: int(0, 1_000_000).optional(),
          })
          .strict(),
      )
      .default([]),
    /**
     * What the launcher does when a node process dies without a planned crash (processes only):
     * `restart` it from its last checkpoint (up to `maxRestarts` times per node, then go on
     * without it), `continue` without it, or `abort` the run.
     */
    onCrash: oneOf(['restart', 'continue', 'abort'] as const).default('restart'),
    /** Unplanned restarts allowed per node under `onCrash: restart`. */
    maxRestarts: int(0, 1000).default(3),
    /**
     * Pause: the node freezes at the start of `round` for as long as `rounds` of its rounds take,
     * then carries on and must catch up. In processes the whole process blocks (no event loop,
     * like SIGSTOP); the simulator has it sit out those rounds.
     */
    stalls: z
      .array(
        z
          .object({
            node: int(0, MAX_NODES - 1),
            round: int(0, 1_000_000),
            rounds: int(1, 1_000_000),
          })
          .strict(),
      )
      .default([]),
    /** Permanent leave at a round. */
    leaves: z
      .array(z.object({ node: int(0, MAX_NODES - 1), round: int(0, 1_000_000) }).strict())
      .default([]),
    /** Late join: the node starts at this round. */
    joins: z
      .array(z.object({ node: int(0, MAX_NODES - 1), round: int(0, 1_000_000) }).strict())
      .default([]),
    /** Partition into groups for rounds [from, to); messages across groups are dropped. */
    partitions: z
      .array(
        z
          .object({
            groups: z.array(z.array(int(0, MAX_NODES - 1)).min(1)).min(2),
            from: int(0, 1_000_000),
            to: int(0, 1_000_000),
          })
          .strict(),
      )
      .default([]),
    byzantine: z
      .array(
        z
          .object({
            node: int(0, MAX_NODES - 1),
            behaviour: oneOf(['sign-flip', 'noise', 'scale', 'label-flip'] as const),
            /** `scale`: factor; `sign-flip`: factor applied to -x; `noise`: Gaussian sigma. */
            scale: num(-1e6, 1e6).default(1),
            sigma: num(0, 1e6).default(1),
          })
          .strict(),
      )
      .default([]),
  })
  .strict()
  .prefault({});

const networkSchema = z
  .object({
    /**
     * A pre-shared key file (libp2p private network; `flatmesh roster` writes one as swarm.key):
     * every node must hold the same key, and a host without it cannot complete a connection to any
     * node. A relative path is taken from the working directory of each node process. Default:
     * none (an open run, admission by roster only).
     */
    psk: z.string().min(1, { error: 'must be the path of a key file' }).optional(),
  })
  .strict()
  .prefault({});

/**
 * In-run analyses, off unless given. `flatness`: every `every` rounds (and at the last round) each
 * node measures the largest Hessian eigenvalue (and the `top` largest, and the Hutchinson trace if
 * `trace`) of its current model and of its SWA model once it has one, on a seeded subset of
 * `samples` test samples, and adds them to its round record (src/node/flatness-tracking.ts); the
 * last figures of each node are also in summary.json (perNode[].flatness, and their mean).
 * Deterministic from the run seed; costs about `top` x 20 Hessian-vector products (each ~2.5
 * gradients over the samples) per model, plus `probes` with `trace`.
 */
const analysisSchema = z
  .object({
    flatness: z
      .object({
        every: int(1, 1_000_000).default(10),
        /** Test samples the Hessian is taken over (a seeded subset; 0 = the whole test set). */
        samples: int(0, 10_000_000).default(1000),
        /** Top eigenvalues (λmax, ..., λtop); with top > 1 the record also gives λmax/λtop. */
        top: int(1, 20).default(1),
        trace: z.boolean({ error: 'must be true or false' }).default(false),
        /** Rademacher probes of the trace. */
        probes: int(2, 10_000).default(30),
        /**
         * The trace estimator (learn/flatness/spectrum.ts): Hutchinson, or Hutch++ (`probes`
         * products split between a sketch of the top of the spectrum and Hutchinson on the rest).
         */
        traceMethod: z
          .enum(['hutchinson', 'hutch++'], { error: "must be 'hutchinson' or 'hutch++'" })
          .default('hutchinson'),
      })
      .strict()
      // Hutch++ splits its products three ways (sketch, its exact trace, residual probes).
      .superRefine((f, ctx) => {
        if (f.traceMethod === 'hutch++' && f.probes < 4)
          ctx.addIssue({
            code: 'custom',
            path: ['probes'],
            message: "must be at least 4 with traceMethod 'hutch++'",
            input: f.probes,
          });
      })
      .optional(),
  })
  .strict();

export const experimentSchema = z
  .object({
    nodes: int(1, MAX_NODES).default(8),
    run: runSchema,
    topology: topologySchema,
    data: dataSchema,
    model: modelSchema,
    train: trainSchema,
    swa: swaSchema,
    gossip: gossipSchema,
    faults: faultsSchema,
    network: networkSchema,
    eval: z
      .object({
        /** Evaluate the current (and SWA) model every this many rounds, and at the last round. */
        every: int(1, 1_000_000).default(5),
        /**
         * The last this-many rounds are all evaluated, and summaries and sweeps give the mean over
         * them (`meanTailAccuracy`, `meanTailSwaAccuracy`) beside the final-round figures. 0 = none.
         */
        tail: int(0, 1_000_000).default(5),
        batchSize: int(1, 65_536).default(512),
        /** Cap on the test-set size; 0 = all. */
        limit: int(0, 10_000_000).default(0),
      })
      .strict()
      .prefault({}),
    checkpoint: z
      .object({ every: int(1, 1_000_000).default(10) })
      .strict()
      .prefault({}),
    /** In-run analyses (absent: none). */
    analysis: analysisSchema.optional(),
    /** Tensor backend: `auto` picks node -> wasm -> cpu. */
    backend: oneOf(['auto', 'node', 'wasm', 'cpu'] as const).default('auto'),
  })
  .strict();

export type Experiment = z.output<typeof experimentSchema>;
export type ExperimentInput = z.input<typeof experimentSchema>;
export type FaultsConfig = Experiment['faults'];
