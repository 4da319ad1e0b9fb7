import * as path from 'node:path';

/** Where the simulated hypervisor keeps its state inside the host folder. */
export const simPaths = {
  socket: (dir: string) => path.join(dir, 'hypervisor.sock'),
  dom0Token: (dir: string) => path.join(dir, 'dom0.token'),
  evtchnDir: (dir: string) => path.join(dir, 'evtchn'),
  memDir: (dir: string) => path.join(dir, 'mem'),
  eventFile: (dir: string, domid: number) => path.join(dir, 'evtchn', `d${domid}.events`),
  doorbell: (dir: string, handle: number) => path.join(dir, 'evtchn', `h${handle}.fifo`),
  memory: (dir: string, domid: number, seq: number) =>
    path.join(dir, 'mem', `d${domid}-${seq}.mem`),
} as const;
