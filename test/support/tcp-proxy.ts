import { type Server, type Socket, createConnection, createServer } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy in front of a real server that a test can cut and restore, to make a dependency
 * unreachable and then bring it back without touching the shared service behind it. It can also turn
 * into a black hole: connections are accepted and nothing ever answers, as in a network partition.
 */
export class TcpProxy {
  private server!: Server;
  private pairs = new Set<Pair>();
  private held = new Set<Socket>();
  port = 0;
  up = true;
  silent = false;

  constructor(private target: { host: string; port: number }) {}

  async start(): Promise<this> {
    this.server = createServer((client) => {
      if (this.silent) return this.hold(client);
      if (!this.up) return client.destroy();
      const upstream = createConnection(this.target);
      const pair = { client, upstream };
      this.pairs.add(pair);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Drops every open connection and refuses new ones. */
  cut() {
    this.up = false;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** From now on nothing answers: open connections go quiet and new ones are accepted and ignored. */
  blackhole() {
    this.silent = true;
    for (const pair of this.pairs) {
      pair.client.unpipe();
      pair.upstream.unpipe();
      pair.client.removeAllListeners('close').removeAllListeners('error');
      pair.upstream.removeAllListeners('close').removeAllListeners('error');
      pair.upstream.on('error', () => undefined).destroy();
      this.hold(pair.client);
    }
    this.pairs.clear();
  }

  restore() {
    this.up = true;
    this.silent = false;
    for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  private hold(socket: Socket) {
    this.held.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
  }

  /** Keeps every open connection up but stops relaying: the server behind seems to hang mid-conversation. */
  freeze() {
    for (const { client, upstream } of this.pairs) {
      for (const s of [client, upstream]) {
        s.unpipe();
        s.pause();
      }
    }
  }

  async stop() {
    this.restore();
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
