/**
 * The summary of a run as the terminal shows it when the run ends (and the report's header):
 *
 *   completed: 8 nodes x 40 rounds in 14.6 s (processes; all nodes connected after 1.5 s)
 *   mean accuracy 92.2% | mean SWA accuracy 90.2% | average model 94.7%
 *   mean over the last 5 rounds: accuracy 91.8% | SWA accuracy 90.1%
 *   flatness at round 39 (mean of 8 nodes): λmax 12.3, trace 81.0 | SWA λmax 9.87, trace 70.2
 *   (with analysis.flatness only)
 *   messages: sent 572, delivered 508, dropped 64, failed 0, missing 0, late 0, rejected 0
 *   (a run with restarts or catch-ups ends that line with `| restarts 1 | catch-ups 2 (9 rounds
 *   skipped)`)
 *   summary: runs/run-20261126-102020-s1/summary.json
 */
import type { MeanFlatness, MeanModelFlatness, RunSummary } from './records.js';

export function formatSummary(s: RunSummary, out?: string): string {
  const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
  const m = s.messages;
  const connected = s.startup?.allConnectedSeconds;
  const startup =
    connected === null || connected === undefined
      ? ''
      : `; all nodes connected after ${connected.toFixed(1)} s`;
  return [
    `${s.completed ? 'completed' : 'INCOMPLETE'}: ${s.nodes} nodes x ${s.rounds} rounds in ${s.wallSeconds.toFixed(1)} s (${s.mode}${startup})`,
    ...(s.reason ? [`why: ${s.reason}`] : []),
    `mean accuracy ${pct(s.meanAccuracy)} | mean SWA accuracy ${pct(s.meanSwaAccuracy)} | average model ${pct(s.accuracyOfAverageModel)}`,
    // Steadier than the last round's figures, which swing with the last rounds' matchings.
    ...(s.tailRounds && s.meanTailAccuracy !== undefined
      ? [
          `mean over the last ${s.tailRounds} rounds: accuracy ${pct(s.meanTailAccuracy)} | SWA accuracy ${pct(s.meanTailSwaAccuracy ?? null)}`,
        ]
      : []),
    ...(s.flatness ? [flatnessLine(s.flatness)] : []),
    `messages: sent ${m.sent}, delivered ${m.delivered}, dropped ${m.dropped}, failed ${m.failed}, missing ${m.missing}, late ${m.late}, rejected ${m.rejected}` +
      (s.restarts > 0 ? ` | restarts ${s.restarts}` : '') +
      // Nodes that fell behind (paused, starved, late) and jumped to the run's round.
      (s.catchUps ? ` | catch-ups ${s.catchUps} (${s.roundsCaughtUp ?? 0} rounds skipped)` : ''),
    ...(s.faults['checkpoint-failed']
      ? [
          `checkpoints not written: ${s.faults['checkpoint-failed']} (each node kept its previous one)`,
        ]
      : []),
    ...(out ? [`summary: ${out}/summary.json`] : []),
  ].join('\n');
}

/** In-run flatness (analysis.flatness): the mean of the nodes' last figures. */
function flatnessLine(f: MeanFlatness): string {
  const figures = (m: MeanModelFlatness) =>
    `λmax ${m.lambdaMax.toPrecision(3)}` +
    (m.ratio !== undefined ? `, λmax/λk ${m.ratio.toPrecision(3)}` : '') +
    (m.trace !== undefined ? `, trace ${m.trace.toPrecision(3)}` : '');
  return (
    `flatness at round ${f.round} (mean of ${f.nodes} nodes): ${figures(f.model)}` +
    (f.swa ? ` | SWA ${figures(f.swa)}` : '')
  );
}
