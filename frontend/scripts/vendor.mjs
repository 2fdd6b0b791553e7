// Copies the browser files of the npm dependencies into public/vendor/, which the api serves
// with the rest of public/ (there is no bundler: the dashboard is plain ES modules, GraphiQL's
// page plain scripts). Nothing is fetched from a CDN at run time.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const vendor = join(root, "public", "vendor");
mkdirSync(vendor, { recursive: true });
for (const [from, to] of [
  ["node_modules/uplot/dist/uPlot.esm.js", "uPlot.esm.js"],
  ["node_modules/uplot/dist/uPlot.min.css", "uPlot.min.css"],
  // GraphiQL's page (graphiql.html): the UMD builds, which set window.React, window.ReactDOM,
  // window.graphqlWs and window.GraphiQL (GraphiQL 3's bundle has graphql-js inside).
  ["node_modules/react/umd/react.production.min.js", "react.production.min.js"],
  ["node_modules/react-dom/umd/react-dom.production.min.js", "react-dom.production.min.js"],
  ["node_modules/graphql-ws/umd/graphql-ws.min.js", "graphql-ws.min.js"],
  ["node_modules/graphiql/graphiql.min.js", "graphiql.min.js"],
  ["node_modules/graphiql/graphiql.min.css", "graphiql.min.css"],
]) {
  copyFileSync(join(root, from), join(vendor, to));
}
