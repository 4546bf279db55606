// Makes the generated codec use plain numbers for uint64 fields (message ids
// stay far below 2^53): pbjs --force-number still decodes them as Long and
// gives Long defaults. Run by `npm run proto` after pbjs.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
let src = readFileSync(file, 'utf8');
src = src.replaceAll('$util.Long ? $util.Long.fromBits(0,0,true) : 0', '0');
src = src.replaceAll('r.uint64()', '$toNumber(r.uint64())');
src = src.replace(
  'var $root = ',
  'function $toNumber(v) { return typeof v === "number" ? v : v.toNumber(); }\n\nvar $root = ',
);
if (!src.includes('function $toNumber')) throw new Error('proto-numbers: generated code changed shape');
writeFileSync(file, src);
