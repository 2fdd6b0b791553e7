// GraphiQL against this API: queries and mutations over POST /graphql, subscriptions over
// /graphql/ws (graphql-transport-ws). A plain script, not a module: React, ReactDOM, graphqlWs and
// GraphiQL are the globals their UMD builds in vendor/ define.
/* global React, ReactDOM, GraphiQL, graphqlWs */
"use strict";

(() => {
  // Relative to this page, so the API may sit under a path prefix.
  const endpoint = new URL("graphql", document.baseURI);
  const socket = new URL("graphql/ws", document.baseURI);
  socket.protocol = socket.protocol === "https:" ? "wss:" : "ws:";

  const fetcher = GraphiQL.createFetcher({
    url: endpoint.href,
    // Connects on the first subscription only (graphql-ws is lazy by default).
    wsClient: graphqlWs.createClient({ url: socket.href }),
  });

  // ?query=…&variables=…&operationName=… open the editors with that text, and editing keeps
  // the address up to date, so a query can be shared as a link. Headers (which may hold the
  // API token) never go into the address.
  const params = new URLSearchParams(location.search);
  const remember = (name) => (value) => {
    if (value) params.set(name, value);
    else params.delete(name);
    const search = params.toString();
    history.replaceState(null, "", search ? `?${search}` : location.pathname);
  };

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher,
      query: params.get("query") ?? undefined,
      variables: params.get("variables") ?? undefined,
      operationName: params.get("operationName") ?? undefined,
      onEditQuery: remember("query"),
      onEditVariables: remember("variables"),
      onEditOperationName: remember("operationName"),
      defaultEditorToolsVisibility: true,
    }),
  );
})();
