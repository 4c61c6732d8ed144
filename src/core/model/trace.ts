/** One step of an explanation: what the kernel looked at and what followed. */
export type TraceStage = 'hook' | 'rule' | 'policy' | 'routing' | 'socket' | 'forward' | 'deliver' | 'note';

export interface TraceStep {
  readonly stage: TraceStage;
  /** One readable line. */
  readonly text: string;
  readonly hook?: string;
  /** `family table chain`. */
  readonly chain?: string;
  readonly handle?: number;
  readonly rule?: string;
  readonly matched?: boolean;
  readonly verdict?: string;
}

/** A rule by where it lives; the differential tests compare these with kernel counters. */
export interface RuleRef {
  readonly chain: string;
  readonly handle?: number;
  readonly index: number;
}
