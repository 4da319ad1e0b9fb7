import { type PageMemory, PageView } from './page-view.js';
import { type RingLayout, validateRingLayout } from './ring-layout.js';

/**
 * Empties a ring by setting both indices to `index` (default 0). For whoever sets up a fresh page
 * (a simulator, a test); never call it on a ring the other side is using.
 */
export function resetRing(memory: PageMemory | PageView, layout: RingLayout, index = 0): void {
  const page = PageView.of(memory);
  validateRingLayout(layout, page.byteLength);
  page.storeU32(layout.consOffset, index);
  page.storeU32(layout.prodOffset, index);
}
