import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

/**
 * A seeded PRNG (mulberry32): the same seed drops the same packets in every run.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LossModelOptions {
  /** Long-run loss, percent. */
  lossPct: number;
  /** Mean length of a loss burst, packets (1 = independent losses). Default 2.5. */
  burstLength?: number;
  seed?: number;
}

/**
 * Gilbert–Elliott bursty loss: a Good state that never drops and a Bad state that always does
 * (the "simple Gilbert" model). Leaving Bad has probability r = 1/burstLength; entering it
 * p = r·L/(1 − L), so the stationary loss is p/(p + r) = L and bursts average `burstLength`.
 */
export class GilbertElliott {
  readonly lossPct: number;
  readonly burstLength: number;
  readonly #p: number;
  readonly #r: number;
  readonly #random: () => number;
  #bad = false;
  decisions = 0;
  dropped = 0;

  constructor(options: LossModelOptions) {
    const loss = options.lossPct / 100;
    if (!(loss >= 0 && loss < 1)) throw new RangeError(`lossPct must be 0…99, got ${options.lossPct}`);
    this.lossPct = options.lossPct;
    this.burstLength = options.burstLength ?? 2.5;
    if (!(this.burstLength >= 1)) throw new RangeError(`burstLength must be ≥ 1, got ${this.burstLength}`);
    this.#r = 1 / this.burstLength;
    this.#p = (this.#r * loss) / (1 - loss);
    this.#random = seededRandom(options.seed ?? 1);
  }

  /** True: drop this packet. */
  drop(): boolean {
    this.#bad = this.#bad ? this.#random() >= this.#r : this.#random() < this.#p;
    this.decisions++;
    if (this.#bad) this.dropped++;
    return this.#bad;
  }
}

export interface RelayStats {
  /** Server → client RTP packets seen (before any drop), and how many of them were dropped. */
  downRtp: number;
  downDropped: number;
  /** Server → client RTP packets by payload type (after the drop: what the client got). */
  downByPt: Map<number, number>;
  /** Server → client RTP bytes delivered (SRTP datagrams). */
  downBytes: number;
  upDatagrams: number;
  downDatagrams: number;
}

/**
 * A UDP relay the test owns, on loopback, between one client and one server port: the client is
 * told (by SDP rewriting) that the server is at `clientSide`, the server that the client is at
 * `serverSide`; datagrams are passed on both ways. Server → client RTP (RFC 7983: first byte
 * 128–191, RFC 5761: not an RTCP packet type) goes through the loss model; STUN, DTLS and RTCP
 * always pass, so ICE, the handshake and receiver reports work. The RTP header (and so the payload
 * type) is in the clear under SRTP (RFC 3711 §3.1), which is how the relay counts RED packets.
 */
export class LossyRelay {
  readonly stats: RelayStats = { downRtp: 0, downDropped: 0, downByPt: new Map(), downBytes: 0, upDatagrams: 0, downDatagrams: 0 };
  /** Drops applied to server → client RTP; null: no loss. Replace it any time. */
  loss: GilbertElliott | null = null;
  /** Server → client RTP sequence numbers dropped, per SSRC (to tell wire loss from recovery). */
  readonly droppedSeqs = new Map<number, Set<number>>();
  readonly #clientSide: Socket;
  readonly #serverSide: Socket;
  readonly #serverPort: number;
  #client: RemoteInfo | null = null;

  private constructor(clientSide: Socket, serverSide: Socket, serverPort: number) {
    this.#clientSide = clientSide;
    this.#serverSide = serverSide;
    this.#serverPort = serverPort;
    clientSide.on('message', (data, rinfo) => {
      this.#client = rinfo;
      this.stats.upDatagrams++;
      serverSide.send(data, this.#serverPort, '127.0.0.1');
    });
    serverSide.on('message', (data) => {
      const client = this.#client;
      if (client === null) return;
      if (this.#isDownlinkRtp(data)) {
        this.stats.downRtp++;
        if (this.loss?.drop()) {
          this.stats.downDropped++;
          const ssrc = data.readUInt32BE(8);
          let set = this.droppedSeqs.get(ssrc);
          if (set === undefined) this.droppedSeqs.set(ssrc, (set = new Set()));
          set.add(data.readUInt16BE(2));
          return;
        }
        const pt = data[1]! & 0x7f;
        this.stats.downByPt.set(pt, (this.stats.downByPt.get(pt) ?? 0) + 1);
        this.stats.downBytes += data.length;
      }
      this.stats.downDatagrams++;
      clientSide.send(data, client.port, client.address);
    });
  }

  /** A relay in front of the server's UDP `serverPort` on 127.0.0.1. */
  static async open(serverPort: number): Promise<LossyRelay> {
    const bind = (s: Socket): Promise<void> =>
      new Promise((resolve, reject) => {
        s.once('error', reject);
        s.bind(0, '127.0.0.1', () => resolve());
      });
    const clientSide = createSocket('udp4');
    const serverSide = createSocket('udp4');
    await Promise.all([bind(clientSide), bind(serverSide)]);
    return new LossyRelay(clientSide, serverSide, serverPort);
  }

  /** The port the client sends to (written into the server's offer). */
  get clientSidePort(): number {
    return this.#clientSide.address().port;
  }

  /** The port the server sends to (written into the client's answer and candidates). */
  get serverSidePort(): number {
    return this.#serverSide.address().port;
  }

  close(): void {
    this.#clientSide.close();
    this.#serverSide.close();
  }

  #isDownlinkRtp(data: Buffer): boolean {
    if (data.length < 12) return false;
    const b0 = data[0]!;
    if (b0 < 128 || b0 > 191) return false;
    const b1 = data[1]!;
    return !(b1 >= 192 && b1 <= 223);
  }
}

/** Replaces the port of every loopback host candidate in `sdp` (or one `candidate:` line) with `port`. */
export function rewriteCandidatePort(sdp: string, port: number): string {
  return sdp.replace(/(candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 )(\d+)( typ host)/gi, `$1${port}$3`);
}

/** The port of the first loopback host candidate in an SDP. */
export function candidatePort(sdp: string): number {
  const m = /candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 (\d+) typ host/i.exec(sdp);
  if (m === null) throw new Error('no loopback host candidate in the SDP');
  return Number(m[1]);
}
