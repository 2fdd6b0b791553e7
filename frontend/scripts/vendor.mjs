// Copies the browser files of the npm dependencies into public/vendor/, which the api serves
// with the rest of public/ (there is no bundler: the dashboard is plain ES modules).
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const vendor = join(root, "public", "vendor");
mkdirSync(vendor, { recursive: true });
for (const [from, to] of [
  ["node_modules/uplot/dist/uPlot.esm.js", "uPlot.esm.js"],
  ["node_modules/uplot/dist/uPlot.min.css", "uPlot.min.css"],
]) {
  copyFileSync(join(root, from), join(vendor, to));
}
