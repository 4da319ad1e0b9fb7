/**
 * Terminal columns a grapheme cluster takes: 2 for East Asian Wide and Fullwidth characters and
 * emoji presentation, 0 for a cluster of only combining or zero-width characters, else 1.
 * Enough to erase what the pre-login line discipline echoed; not a full wcwidth.
 */
export function graphemeWidth(grapheme: string): number {
  const cp = grapheme.codePointAt(0);
  if (cp === undefined) return 0;
  if (/^[\p{Mn}\p{Me}\p{Cf}]+$/u.test(grapheme)) return 0;
  if (isWide(cp)) return 2;
  if (
    /\p{Extended_Pictographic}/u.test(grapheme) &&
    (cp >= 0x1f000 || grapheme.includes('\uFE0F'))
  ) {
    return 2;
  }
  return 1;
}

/** East Asian Wide (W) and Fullwidth (F) ranges (Unicode 15, coarse). */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xa960 && cp <= 0xa97f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}
