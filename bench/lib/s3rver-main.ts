// Runs s3rver in its own process so the load generator and the store never share an event loop.
import { startS3rver } from '../../test/support/s3rver.js';

const s3 = await startS3rver('kendalls-bench');
console.log(JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket, env: s3.env }));
const stop = () => void s3.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
