/** Seconds from now until a SigV4 query-string link stops working (X-Amz-Date + X-Amz-Expires). */
export function linkLifetimeS(link: string): number {
  const url = new URL(link);
  const d = url.searchParams.get('X-Amz-Date') ?? '';
  const signedAt = Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(11, 13), +d.slice(13, 15));
  return signedAt / 1000 + Number(url.searchParams.get('X-Amz-Expires')) - Date.now() / 1000;
}
