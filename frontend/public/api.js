// Talking to pingpipe-api: GraphQL over HTTP, the API token, and the live subscriptions (results
// and state changes, graphql-transport-ws over one WebSocket, reconnecting by itself).

const TOKEN_KEY = "pingpipe.apiToken";

/** The API answered with GraphQL errors; `code` is the first error's `extensions.code`. */
export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** The API could not be reached at all (network error or a non-GraphQL answer). */
export class Unreachable extends Error {}

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY),
  set: (value) => localStorage.setItem(TOKEN_KEY, value),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

/** Runs one GraphQL operation; the token is sent only when `auth` is set. */
export async function gql(query, variables = {}, { auth = false } = {}) {
  const headers = { "Content-Type": "application/json" };
  const stored = token.get();
  if (auth && stored) headers.Authorization = `Bearer ${stored}`;
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new Unreachable(`The API is unreachable (${e.message}).`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Unreachable(`The API answered ${response.status} without a GraphQL response.`);
  }
  if (body.errors && body.errors.length > 0) {
    const [first] = body.errors;
    throw new ApiError(first.message, first.extensions?.code ?? "INTERNAL");
  }
  return body.data;
}

/**
 * Live subscriptions over one WebSocket (graphql-transport-ws), kept open: after a dropped
 * connection (an API restart, say) it reconnects with a growing pause (0.5 s to 5 s) and
 * subscribes to each again. `operations` maps an id to `{ query, onData }`: `onData` gets each
 * event's `data`. `onState` gets "live", "connecting" or "offline". Returns `{ stop, replace }`:
 * `replace(id, operation)` ends that subscription and starts the new one in its place (under a
 * new id on the wire, so the server never sees an id reused).
 */
export function subscribe(named, onState) {
  let delay = 500;
  let socket;
  let stopped = false;
  let serial = 0;
  let acked = false; // subscribing is allowed only after the server's connection_ack
  const wireId = {}; // name → the id its current subscription has on the wire
  const operations = {}; // wire id → { query, onData }
  for (const [name, operation] of Object.entries(named)) {
    wireId[name] = `${name}-${++serial}`;
    operations[wireId[name]] = operation;
  }

  const connect = () => {
    onState("connecting");
    const url = new URL("/graphql/ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url, "graphql-transport-ws");
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "connection_init", payload: {} }));
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      switch (message.type) {
        case "connection_ack":
          acked = true;
          delay = 500;
          onState("live");
          for (const [id, { query }] of Object.entries(operations)) {
            socket.send(JSON.stringify({ id, type: "subscribe", payload: { query } }));
          }
          break;
        case "next":
          if (message.payload?.data) operations[message.id]?.onData(message.payload.data);
          break;
        case "ping":
          socket.send(JSON.stringify({ type: "pong" }));
          break;
        case "error":
          console.error(`subscription ${message.id} failed`, message.payload);
          break;
        default:
          break;
      }
    });
    socket.addEventListener("close", () => {
      acked = false;
      if (stopped) return;
      onState("offline");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    });
  };
  connect();
  return {
    stop() {
      stopped = true;
      socket?.close();
    },
    replace(name, operation) {
      const old = wireId[name];
      if (old && operations[old]?.query === operation.query) {
        operations[old] = operation;
        return;
      }
      delete operations[old];
      wireId[name] = `${name}-${++serial}`;
      operations[wireId[name]] = operation;
      if (acked && socket?.readyState === WebSocket.OPEN) {
        if (old) socket.send(JSON.stringify({ id: old, type: "complete" }));
        socket.send(JSON.stringify({ id: wireId[name], type: "subscribe", payload: { query: operation.query } }));
      }
    },
  };
}
