/**
 * UDP flows whose route could depend on a name and whose first datagrams are a QUIC ClientHello
 * not complete yet: their datagrams are held (copies: the receive slots are reused) until the
 * name is in, the ClientHello is given up (QuicClientHelloAssembly's bounds in datagrams and
 * bytes), the flow's held bytes pass maxHeldBytes, or the sniff timeout passes; then the loop
 * routes the flow and sends what was held, in order, before anything later. At most maxFlows are
 * held at once: past that a new flow is routed by the datagram it came with. No I/O, clock passed in.
 */
import type { Endpoint } from '../../core/net/sockaddr.js';
import { QuicClientHelloAssembly } from '../../core/sniff/quic-initial.js';

export interface QuicHoldLimits {
  /** How long a flow waits for the rest of its ClientHello (the listener's sniff timeout). */
  readonly timeoutMs: number;
  /** Flows held at once. */
  readonly maxFlows: number;
  /** Bytes of datagrams held per flow (Initials are about 1,200-1,500 bytes each). */
  readonly maxHeldBytes: number;
}

export const QUIC_HOLD_LIMITS: Omit<QuicHoldLimits, 'timeoutMs'> = { maxFlows: 1024, maxHeldBytes: 8 * 1024 };

/** What to do with a flow's datagram: keep waiting (held), or route it now, sending `held` first. */
export type QuicHoldStep =
  | { readonly kind: 'held' }
  | {
      readonly kind: 'route';
      /** The name the ClientHello gave; undefined: route without one. */
      readonly name: string | undefined;
      /** The flow's datagrams held before this one, in arrival order. */
      readonly held: readonly Buffer[];
      /** The DSCP of the flow's first datagram (for its session's sockets). */
      readonly dscp: number | undefined;
    };

/** A flow whose time ran out: routed without a name, `held` are all its datagrams. */
export interface ExpiredHold {
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly held: readonly Buffer[];
  readonly dscp: number | undefined;
}

interface Held {
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly assembly: QuicClientHelloAssembly;
  readonly datagrams: Buffer[];
  readonly dscp: number | undefined;
  readonly deadline: number;
  bytes: number;
}

export class QuicHold {
  /** By flow key, in arrival order (so in deadline order, but for a timeout changed by a reload). */
  private readonly flows = new Map<string, Held>();
  private limits: QuicHoldLimits;

  constructor(limits: Pick<QuicHoldLimits, 'timeoutMs'> & Partial<QuicHoldLimits>) {
    this.limits = { ...QUIC_HOLD_LIMITS, ...limits };
  }

  get size(): number {
    return this.flows.size;
  }

  has(key: string): boolean {
    return this.flows.has(key);
  }

  /** A reload's sniff timeout: for flows held from now on. */
  setTimeout(timeoutMs: number): void {
    this.limits = { ...this.limits, timeoutMs };
  }

  /** The first datagram of flow `key` (not held yet). */
  first(key: string, client: Endpoint, destination: Endpoint, datagram: Uint8Array, dscp: number | undefined, now: number): QuicHoldStep {
    const assembly = new QuicClientHelloAssembly();
    const result = assembly.offer(datagram);
    if (result.kind !== 'more' || this.flows.size >= this.limits.maxFlows || datagram.length > this.limits.maxHeldBytes) {
      return { kind: 'route', name: result.kind === 'name' ? result.name : undefined, held: [], dscp };
    }
    this.flows.set(key, { client, destination, assembly, datagrams: [Buffer.from(datagram)], dscp, deadline: now + this.limits.timeoutMs, bytes: datagram.length });
    return { kind: 'held' };
  }

  /** A later datagram of held flow `key`. */
  next(key: string, datagram: Uint8Array): QuicHoldStep {
    const flow = this.flows.get(key);
    if (!flow) throw new Error(`quic hold: flow ${key} is not held`);
    const result = flow.assembly.offer(datagram);
    if (result.kind === 'more' && flow.bytes + datagram.length <= this.limits.maxHeldBytes) {
      flow.datagrams.push(Buffer.from(datagram));
      flow.bytes += datagram.length;
      return { kind: 'held' };
    }
    this.flows.delete(key);
    return { kind: 'route', name: result.kind === 'name' ? result.name : undefined, held: flow.datagrams, dscp: flow.dscp };
  }

  /** The earliest sniff deadline of the held flows; undefined when none is held. */
  nextDeadline(): number | undefined {
    let first: number | undefined;
    // Not simply the first flow's: a reload that shortened the timeout gives later flows earlier deadlines.
    for (const flow of this.flows.values()) if (first === undefined || flow.deadline < first) first = flow.deadline;
    return first;
  }

  /** Flows whose sniff timeout passed, taken out: each is routed without a name. */
  expired(now: number): ExpiredHold[] {
    const out: ExpiredHold[] = [];
    for (const [key, flow] of this.flows) {
      if (flow.deadline > now) continue;
      this.flows.delete(key);
      out.push({ client: flow.client, destination: flow.destination, held: flow.datagrams, dscp: flow.dscp });
    }
    return out;
  }

  /** Drop every held flow (the loop stops). */
  clear(): void {
    this.flows.clear();
  }
}
