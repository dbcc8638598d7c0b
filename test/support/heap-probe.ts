/**
 * Preloaded (`--expose-gc --import`) into a server a test starts with `heapProbe`: on SIGUSR2 it runs
 * a full garbage collection and prints one `heap-probe {…}` line of what is still alive. Resident
 * memory also moves with V8 and the allocator settling after warm-up; the live heap after a full
 * collection moves only with what the process keeps, which is what a leak is.
 */
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('heap-probe needs --expose-gc');

process.on('SIGUSR2', () => {
  gc();
  process.stderr.write(`heap-probe ${JSON.stringify({ heapUsed: process.memoryUsage().heapUsed })}\n`);
});
