import { type Server, type Socket, createConnection, createServer } from 'node:net';

/**
 * A TCP proxy in front of a real server that a test can cut and restore, to make a dependency
 * unreachable and then bring it back without touching the shared service behind it.
 */
export class TcpProxy {
  private server!: Server;
  private sockets = new Set<Socket>();
  port = 0;
  up = true;

  constructor(private target: { host: string; port: number }) {}

  async start(): Promise<this> {
    this.server = createServer((client) => {
      if (!this.up) return client.destroy();
      const upstream = createConnection(this.target);
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
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
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  restore() {
    this.up = true;
  }

  /** Keeps every open connection up but stops relaying: the server behind seems to hang mid-conversation. */
  freeze() {
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
    }
  }

  async stop() {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
