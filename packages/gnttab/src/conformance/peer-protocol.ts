// The line protocol between the conformance suite and its peer process (peer.ts): one JSON
// object per line. The peer first prints `{"ready":true,"domid":N,"pid":P}` (or
// `{"ready":false,"error":{...}}`), then answers each request `{"id":N,"op":"...",...args}`
// with `{"id":N,"ok":true,"result":{...}}` or `{"id":N,"ok":false,"error":{code,name,message,reason}}`.

export interface PeerErrorInfo {
  code: string;
  name: string;
  message: string;
  /** `details.reason` of a GnttabError, when it has one. */
  reason?: string;
}

export interface PeerOps {
  /** Shares pages with `grantee`; `handle` names them in later requests. */
  share: {
    args: { grantee: number; count: number; readonly: boolean };
    result: { handle: number; refs: number[] };
  };
  map: {
    args: { domid: number; refs: number[]; writable: boolean };
    result: { handle: number };
  };
  mapFrames: {
    args: { domid: number; frames: number[]; writable: boolean };
    result: { handle: number };
  };
  write: { args: { handle: number; offset: number; hex: string }; result: Record<string, never> };
  read: { args: { handle: number; offset: number; length: number }; result: { hex: string } };
  /** Ends a share or unmaps a mapping. */
  release: { args: { handle: number }; result: Record<string, never> };
  /** Closes the peer's handle; the peer exits after answering. */
  close: { args: Record<string, never>; result: Record<string, never> };
}
export type PeerOp = keyof PeerOps;

export function errorInfo(err: unknown): PeerErrorInfo {
  const e = err as { code?: unknown; name?: unknown; message?: unknown; details?: unknown };
  const reason = (e?.details as { reason?: unknown } | undefined)?.reason;
  return {
    code: typeof e?.code === 'string' ? e.code : 'ERR_UNKNOWN',
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof reason === 'string' ? { reason } : {}),
  };
}
