/**
 * `flatmesh launch --dashboard`: the launch's event stream kept for the page, the dashboard server
 * started on it, and its controls wired to the launcher's live-control handle. Prints the page's
 * URL (with its token) on stderr before the nodes start.
 *
 *   const d = await launchDashboard({ port: 8080 });
 *   await launch(cfg, { events: d.events, onControl: d.onControl });
 *   await d.close();
 */
import { type Dashboard, startDashboard } from '../report/dashboard/server.js';
import { EventHistory, RunEvents } from '../run/events.js';
import { type LaunchHandle, LiveControl, parseControlAction } from '../run/live-control.js';

export interface LaunchDashboardOptions {
  port?: number;
  host?: string;
  readonly?: boolean;
  /** Where to print the URL (default stderr). */
  print?: (line: string) => void;
}

export interface LaunchDashboard {
  events: RunEvents;
  onControl: (handle: LaunchHandle) => void;
  dashboard: Dashboard;
  close(): Promise<void>;
}

export async function launchDashboard(opts: LaunchDashboardOptions = {}): Promise<LaunchDashboard> {
  const events = new RunEvents();
  const history = new EventHistory(events);
  let runDir: string | undefined;
  events.on((e) => {
    if (e.type === 'run') runDir = e.out;
  });
  let control: LiveControl | undefined;
  let nodes = 0;
  const dashboard = await startDashboard({
    source: history,
    runDir: () => runDir,
    ...(opts.readonly && { readonly: true }),
    ...(opts.host && { host: opts.host }),
    ...(opts.port !== undefined && { port: opts.port }),
    control: (body) => {
      if (!control) throw new Error('the run is not started yet');
      return control.apply(parseControlAction(body, nodes));
    },
  });
  (opts.print ?? ((l) => process.stderr.write(`${l}\n`)))(
    `dashboard: ${dashboard.url}${opts.readonly ? ' (read-only)' : ''}`,
  );
  return {
    events,
    dashboard,
    onControl(handle) {
      nodes = handle.nodes;
      control = new LiveControl(handle, events);
    },
    close: () => dashboard.close(),
  };
}
