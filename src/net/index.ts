/**
 * The net layer: bytes and peers, never tensors. One Transport contract (transport.ts), two
 * implementations (in-memory for the simulator, libp2p for real processes), one receive-side Inbox
 * and one wire format both use.
 *
 *   import { memoryNetwork, memoryTransport, libp2pTransport, loadOrCreateIdentity } from '../net/index.js';
 */
export { CONTROL_MAX_BYTES, controlTopic, decodeControl, encodeControl } from './control.js';
export { Inbox, type InboxComponents, type InboxInit } from './inbox.js';
export {
  createHost,
  type Host,
  IDENTITY_FILE,
  loadOrCreateIdentity,
  parseRoster,
  type Roster,
  type RosterNode,
  rosterGate,
} from './libp2p/host.js';
export {
  type Libp2pTransport,
  type Libp2pTransportComponents,
  type Libp2pTransportInit,
  libp2pTransport,
  WEIGHTS_PROTOCOL,
} from './libp2p/transport.js';
export {
  type MemoryNetwork,
  type MemoryTransportComponents,
  type MemoryTransportInit,
  memoryNetwork,
  memoryTransport,
} from './memory.js';
export { countingMetrics, type TransportCounts } from './metrics.js';
export type {
  Codec,
  CollectResult,
  ControlMessage,
  SendOutcome,
  Transport,
  TransportEvents,
  TransportMetrics,
  WeightsMessage,
} from './transport.js';
export {
  type DecodedFrame,
  decodeFrame,
  encodeFrame,
  type FrameExpectations,
  type FrameHeader,
  frameSize,
  HEADER_BYTES,
  maxFrameSize,
} from './wire.js';
