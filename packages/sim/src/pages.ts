import { requireNative } from '@xencons/native';
import type { PageRef } from '@xencons/sim-hypervisor';
import { PAGE_SIZE } from '@xencons/sim-hypervisor';

/** Maps one simulated page (a region of a page file) shared, read-write. */
export function mapPage(page: PageRef | undefined): ArrayBuffer {
  if (!page) throw new Error('the hypervisor returned no page');
  return requireNative().mapFile(page.path, page.offset, PAGE_SIZE, true);
}

export function unmapPage(buffer: ArrayBuffer | undefined): void {
  if (buffer) requireNative().unmap(buffer);
}
