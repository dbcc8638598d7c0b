#!/usr/bin/env node
// Makes a design image to try the API with (README, "Calling it in development"): a 600×600 PNG, within the
// 100–4096 pixel sides the API accepts, drawn with sharp (already a dependency).
//
//   npm run make-design-png               # writes ./design.png
//   npm run make-design-png -- other.png  # or another path
import path from 'node:path';
import sharp from 'sharp';

const out = path.resolve(process.argv[2] ?? 'design.png');
const nails = [0, 1, 2, 3, 4]
  .map((i) => `<rect x="${60 + i * 100}" y="${170 + Math.abs(2 - i) * 30}" width="80" height="200" rx="40" fill="#e05a8d" stroke="#ffffff" stroke-width="8"/>`)
  .join('');
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="600">
  <rect width="600" height="600" fill="#fbe3ec"/>${nails}
  <text x="300" y="520" font-family="sans-serif" font-size="40" text-anchor="middle" fill="#3a2a33">french tips</text>
</svg>`;
const info = await sharp(Buffer.from(svg)).png().toFile(out);
console.log(`wrote ${out} (${info.width}×${info.height} PNG, ${info.size} bytes)`);
