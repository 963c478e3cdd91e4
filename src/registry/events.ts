import type { Digest } from '../image/digest.js';

/**
 * Where a blob or manifest transfer stands. `exists` and `mounted` end a push
 * without moving bytes; `retrying` and `resumed` say a fault was absorbed.
 */
export type TransferPhase =
  | 'waiting'
  | 'exists'
  | 'mounted'
  | 'downloading'
  | 'uploading'
  | 'retrying'
  | 'resumed'
  | 'done';

interface TransferProgress {
  /** The reference being pulled/pushed, normalised. */
  ref: string;
  digest: Digest;
  mediaType: string;
  phase: TransferPhase;
  done: number;
  total: number;
}

export interface PullProgressEvent extends TransferProgress {
  type: 'pull-progress';
}

export interface PushProgressEvent extends TransferProgress {
  type: 'push-progress';
}

/** Retries and fallbacks the user may want to know about; never carries credentials. */
export interface RegistryWarningEvent {
  type: 'warning';
  message: string;
}

export type RegistryEvent = PullProgressEvent | PushProgressEvent | RegistryWarningEvent;

export type RegistryEventListener = (event: RegistryEvent) => void;
