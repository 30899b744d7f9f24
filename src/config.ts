import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { VoxError } from './errors.ts';
import { roomModeSchema } from './protocol/messages.ts';
import type { OpusProfileName } from './codec/profiles.ts';
import { webhookEventNames } from './webhooks/events.ts';

/**
 * The one typed configuration of a VoxLink server. Layers, later wins:
 *   embedded defaults ← JSON file named by VOXLINK_CONFIG ← VOXLINK_* environment variables.
 * Every knob is documented with its default and trade-off in docs/configuration.md.
 */
const portSchema = z.number().int().min(0).max(65535);
const opusProfileNames = ['low', 'normal', 'high', 'music'] as const satisfies readonly OpusProfileName[];

export const configSchema = z.object({
  server: z
    .object({
      /**
       * Interface for HTTP and WebSocket (one port for both). Default: 0.0.0.0, or 127.0.0.1 in
       * dev mode — dev mode mints tokens for anyone who asks, so it stays on loopback unless a
       * host is configured explicitly together with auth.devMode true.
       */
      host: z.string().default('0.0.0.0'),
      port: portSchema.default(7880),
      /** Base URL printed in the dev demo link; derived from host/port when unset. */
      publicUrl: z.string().url().optional(),
      /**
       * HTTPS for the page, /ws and the HTTP API (docs/configuration.md "HTTPS"). Browsers grant the
       * microphone only to a secure context: https://, or http:// on loopback.
       */
      tls: z
        .object({
          /** PEM certificate chain and private key. Both or neither. */
          certFile: z.string().min(1).optional(),
          keyFile: z.string().min(1).optional(),
          /** Passphrase of an encrypted key file. */
          passphrase: z.string().optional(),
          /**
           * Without certFile/keyFile: generate a self-signed certificate once into `<dataDir>/tls/`.
           * `auto` (default) does it in dev mode on a non-loopback host, where plain http would make
           * the demo unusable; `true` always; `false` never (plain http, e.g. behind a TLS proxy).
           */
          selfSigned: z.union([z.boolean(), z.literal('auto')]).default('auto'),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Where the dev signing secret (and other generated state) lives. */
  dataDir: z.string().default('./.voxlink'),
  auth: z
    .object({
      /**
       * Dev mode: generate and keep a signing secret in dataDir and print a demo URL with a token.
       * Default: on exactly when neither hs256Secret nor eddsaPublicKey is configured.
       */
      devMode: z.boolean().optional(),
      /** HS256 shared secret (≥ 32 bytes of entropy recommended, RFC 7518 §3.2). */
      hs256Secret: z.string().min(32).optional(),
      /** EdDSA (Ed25519) public key as SPKI PEM; tokens are minted elsewhere with the private key. */
      eddsaPublicKey: z.string().optional(),
      /** Expected `iss` / `aud` claims when set. */
      issuer: z.string().optional(),
      audience: z.string().optional(),
      /** Allowed clock skew for exp/nbf. */
      clockToleranceSec: z.number().int().min(0).max(300).default(5),
      /** Lifetime of the dev token printed at start. */
      devTokenTtlSec: z.number().int().positive().default(24 * 3600),
    })
    .prefault({}),
  signalling: z
    .object({
      /** Clients send `heartbeat` this often. */
      heartbeatIntervalMs: z.number().int().min(100).default(15_000),
      /** No message for this long → zombie → close 4000. Must exceed heartbeatIntervalMs. */
      heartbeatTimeoutMs: z.number().int().min(200).default(45_000),
      /** A new connection must send `hello`/`resume` within this time (close 4004). */
      helloTimeoutMs: z.number().int().min(100).default(10_000),
      /** How long a dropped session (and its room membership) is kept for `resume`. */
      resumeGraceMs: z.number().int().min(0).default(30_000),
      /** Replay buffer bounds per session: whichever is hit first evicts the oldest message. */
      replayMaxMessages: z.number().int().min(1).default(1024),
      replayMaxBytes: z.number().int().min(1024).default(1024 * 1024),
      /** Default room mode for rooms created by `join`. */
      defaultRoomMode: roomModeSchema.default('sfu'),
      /**
       * The same identity (token `sub`) joining a room it is already in replaces its old
       * participant there (the old one hears participant_left `replaced`, its media leaves);
       * false: both stay, as two participants.
       */
      replaceIdentity: z.boolean().default(true),
    })
    .prefault({}),
  /** Peer-to-peer rooms (`p2p`, `auto`): docs/media.md "Peer to peer". */
  p2p: z
    .object({
      /** Largest SDP a peer may send through the server's relay (`peer` offer/answer); larger → INVALID_MESSAGE. */
      maxSdpBytes: z.number().int().min(1024).max(64 * 1024).default(16 * 1024),
      /** An `auto` room back to two participants (and nothing recording) returns to peer to peer; false: it stays on the server. */
      returnToDirect: z.boolean().default(true),
      /** A switch whose clients have not all reported `switched` within this long is counted as timed out (and a return to direct is undone). */
      switchTimeoutMs: z.number().int().min(1000).default(15_000),
    })
    .prefault({}),
  limits: z
    .object({
      /** Largest accepted inbound frame (uWS maxPayloadLength); larger → close 1009. */
      maxPayloadBytes: z.number().int().min(1024).default(64 * 1024),
      /** Token bucket per session: sustained messages per second and burst size. */
      messagesPerSecond: z.number().positive().default(50),
      messageBurst: z.number().int().min(1).default(100),
      /** Messages dropped while rate limited before the connection is closed with 4003. */
      rateCloseAfterDropped: z.number().int().min(1).default(200),
      /** Outgoing bytes buffered for a slow reader before it is closed with 4002. */
      maxBackpressureBytes: z.number().int().min(1024).default(1024 * 1024),
      maxRoomsPerSession: z.number().int().min(1).default(8),
      /**
       * Joins per session (signalling/join-limit.ts): a token bucket refilled at `joinsPerMinute` up
       * to `joinBurst`; a join beyond it is refused with JOIN_RATE_LIMITED (and `retryAfterMs`). Each
       * join costs a presence change, a broadcast to the room and a media peer; the bucket is the
       * session's, so a resume does not refill it.
       */
      joinsPerMinute: z.number().positive().default(60),
      joinBurst: z.number().int().min(1).default(20),
      maxParticipantsPerRoom: z.number().int().min(1).default(1000),
      /** Sessions (connected or in grace) per server; a `hello` beyond it is closed with 1013 (try again later). */
      maxSessions: z.number().int().min(1).default(100_000),
      /**
       * Open WebSockets per client IP address; an upgrade beyond it is refused with HTTP 429. Sized
       * for a NAT'd office (everyone behind one address, a few tabs each). 0: no cap (behind a
       * reverse proxy every client has the proxy's address; cap there instead).
       */
      maxConnectionsPerIp: z.number().int().min(0).default(500),
      /**
       * Frames up to this size are read whole and answered with close 1009 when they exceed
       * maxPayloadBytes; a bigger one is cut by uWS without a close frame (the client sees 1006).
       * It bounds what one connection can make the server buffer. At least 2 × maxPayloadBytes.
       */
      frameCeilingBytes: z.number().int().min(2048).default(1024 * 1024),
    })
    .prefault({}),
  turn: z
    .object({
      /**
       * TURN URLs handed to clients, as coturn is configured: "turn:host:3478?transport=udp",
       * "turn:host:3478?transport=tcp", "turns:host:5349?transport=tcp". Empty: no TURN.
       */
      urls: z
        .array(z.string().regex(/^(turn:[^\s?]+(\?transport=(udp|tcp))?|turns:[^\s?]+(\?transport=tcp)?)$/, 'expected turn:host[:port][?transport=udp|tcp] or turns:host[:port][?transport=tcp]'))
        .default([]),
      /**
       * coturn `static-auth-secret` (store static). With a redis/postgres store: the secret written
       * into an empty store on first start. Dev mode generates one in dataDir when unset.
       */
      secret: z.string().optional(),
      /** Lifetime of TURN REST credentials; a rotated-out secret is removed this long (plus margin) after the rotation. */
      ttlSec: z.number().int().min(60).default(24 * 3600),
      /** STUN URLs handed to clients. */
      stunUrls: z.array(z.string()).default([]),
      /** Where coturn reads the shared secrets: its config file (static), its Redis user DB, or its PostgreSQL user DB. */
      store: z.enum(['static', 'redis', 'postgres']).default('static'),
      /** coturn's `realm` (the store keys secrets by realm). Required with a redis or postgres store. */
      realm: z.string().min(1).optional(),
      /** coturn's `redis-userdb` as a redis:// URL (store redis). */
      redisUrl: z.string().optional(),
      /** coturn's `psql-userdb` as a postgres:// URL (store postgres). */
      postgresUrl: z.string().optional(),
      /** How often the in-memory secrets are re-read from the store (and retired secrets removed). */
      refreshSec: z.number().int().min(1).max(3600).default(10),
      /** Realm options written to the store (coturn `user-quota`, `total-quota`, `max-bps`); unset: coturn's own config applies. */
      userQuota: z.number().int().min(0).optional(),
      totalQuota: z.number().int().min(0).optional(),
      maxBps: z.number().int().min(0).optional(),
      /** coturn's `redis-statsdb`: VoxLink reads allocation statuses and traffic there for /metrics. */
      stats: z
        .object({
          /** redis:// URL of coturn's redis-statsdb; unset: no TURN statistics. */
          redisUrl: z.string().optional(),
          /** Label per-user series with the user id from the TURN username ("<expiry>:<userId>"). */
          userLabels: z.boolean().default(true),
        })
        .prefault({}),
    })
    .superRefine((turn, ctx) => {
      if (turn.store === 'static') return;
      const url = turn.store === 'redis' ? 'redisUrl' : 'postgresUrl';
      if (turn[url] === undefined) ctx.addIssue({ code: 'custom', path: [url], message: `required with turn.store ${turn.store}` });
      if (turn.realm === undefined) ctx.addIssue({ code: 'custom', path: ['realm'], message: `required with turn.store ${turn.store} (coturn's realm)` });
    })
    .prefault({}),
  /** Read by the media plane (src/media); signalling only passes it on. */
  media: z
    .object({
      /** Start the media plane (worker pool). Off: presence-only signalling, media → MEDIA_UNAVAILABLE. */
      enabled: z.boolean().default(true),
      /** Worker threads hosting rooms (piscina, min = max). */
      workers: z.number().int().min(1).default(Math.max(1, availableParallelism())),
      /** IP written into ICE candidates; must be reachable by clients. */
      announcedIp: z.string().default('127.0.0.1'),
      /** Local IP the RTC sockets bind to. */
      listenIp: z.string().default('0.0.0.0'),
      rtcMinPort: portSchema.default(40000),
      rtcMaxPort: portSchema.default(49999),
      /** Outgoing audio slots per subscriber (docs/media.md "Audio slots"). */
      slots: z.number().int().min(1).max(16).default(3),
      /** Forwarded audio leaves through VoxLink's own SRTP straight onto the socket (docs/media.md "Fast path"). Off: werift's SRTP and send, for comparison. */
      fastSrtp: z.boolean().default(true),
      /**
       * One UDP port per worker thread (docs/media.md "Transport"): worker k listens on udpPort + k
       * (the lowest free of udpPort … udpPort + workers − 1) for every peer it hosts. Unset: one port
       * per peer from rtcMinPort…rtcMaxPort.
       */
      udpPort: z.number().int().min(1).max(65535).optional(),
      /**
       * With `udpPort`: the media worker threads queue their UDP sends and libuv sends each burst
       * with sendmmsg, up to 20 datagrams per system call (docs/media.md "Batched sends"). No effect
       * on a port per peer (nothing to batch on one peer's socket). Off by default: faster in the
       * forwarding bench, but a saturated 300-person room lost packets with it (docs/media.md).
       */
      udpBatch: z.boolean().default(false),
      /** Worker load report and room stats period. Shorter reacts faster, costs more messages. */
      statsIntervalMs: z.number().int().min(100).default(1000),
      /** Main↔worker request timeout; a request past it rejects with CHANNEL_TIMEOUT. */
      requestTimeoutMs: z.number().int().min(100).default(5000),
      /** Rooms per worker thread before new rooms queue. */
      maxRoomsPerWorker: z.number().int().min(1).default(10000),
      /** Packets per second counted as one fully loaded thread when placing rooms. */
      ppsCapacity: z.number().int().min(1).default(20000),
      /** Re-placements of one room per minute after worker deaths before it is given up. */
      maxRecoveries: z.number().int().min(0).default(3),
      // Rooms over several workers (docs/media.md "Rooms over several workers").
      /** Peers of one `sfu` room a worker hosts before the room's next participants go to another worker. 0: a room stays on one worker. */
      roomWorkerCapacity: z.number().int().min(0).max(65535).default(500),
      /** How a spilled room's workers pass packets: `ring` (SharedArrayBuffer, measured faster) or `batch` (postMessage per event-loop turn). */
      spillTransport: z.enum(['ring', 'batch']).default('ring'),
      /** The room mixer of `mix`/`hybrid` rooms (and of sfu subscribers who asked for one mixed stream). */
      mixing: z
        .object({
          /** Frame power above which an input is an active speaker (mixed). Lower mixes in more background noise. */
          voiceThresholdDbfs: z.number().min(-100).max(0).default(-50),
          /** How long a speaker stays in the mix after their last loud frame. Shorter clips word ends; longer keeps noise and N−1 encoders. */
          hangoverMs: z.number().int().min(20).max(5000).default(400),
          /** Opus profile every Opus listener's mix starts with (src/codec/profiles.ts). Higher costs bandwidth per listener. */
          opusProfile: z.enum(opusProfileNames).default('normal'),
        })
        .prefault({}),
      /** Audio under loss (docs/audio.md "Resilience"): RED per subscriber, RED from publishers, audio NACK. */
      resilience: z
        .object({
          red: z
            .object({
              /** RED (RFC 2198) toward subscribers that negotiated `red/48000/2`, by their measured downlink loss. */
              enabled: z.boolean().default(true),
              /** Ask publishers for RED upstream (`red/48000/2` first on their microphone m-line); the server repairs uplink loss with it. Off: twice the uplink bandwidth, and werift splits RED with objects per block. */
              publisher: z.boolean().default(false),
              /** Every RED-capable subscriber gets distance ≥ 1, loss or not. More bandwidth for everyone, no reaction time. */
              always: z.boolean().default(false),
              /** Smoothed downlink loss (%, from the subscriber's RTCP RRs) from which it gets one redundant frame per packet. */
              lossOnPct: z.number().min(0).max(100).default(2),
              /** … and from which it gets two. */
              lossDistance2Pct: z.number().min(0).max(100).default(8),
              /** Minimum time at a distance after stepping up before stepping down, ms. */
              holdMs: z.number().int().min(0).max(600_000).default(4000),
            })
            .refine((r) => r.lossOnPct <= r.lossDistance2Pct, { message: 'lossOnPct must be ≤ lossDistance2Pct' })
            .prefault({}),
          dred: z
            .object({
              /** DRED (Opus 1.5) in the mix toward listeners that decode it (Opus fmtp `x-voxlink-dred=1`), by their downlink loss. */
              enabled: z.boolean().default(true),
              /** Smoothed downlink loss (%, from the listener's RTCP RRs) from which its mix carries DRED. */
              lossOnPct: z.number().min(0).max(100).default(5),
              /** … below which it stops (after `minOnMs`). */
              lossOffPct: z.number().min(0).max(100).default(2),
              /** Minimum time DRED stays on once on, ms. */
              minOnMs: z.number().int().min(0).max(600_000).default(10_000),
            })
            .refine((d) => d.lossOffPct <= d.lossOnPct, { message: 'lossOffPct must be ≤ lossOnPct' })
            .prefault({}),
          nack: z
            .object({
              /** Resend audio packets a subscriber NACKs (Opus negotiated with `a=rtcp-fb:111 nack`). */
              enabled: z.boolean().default(true),
              /** Packets kept per audio output for resending (20 ms each). */
              capacity: z.number().int().min(1).max(1024).default(32),
              /** Answer NACKs only while the output's RTT (RTCP RR) is at most this, ms: later the frame has already been played. */
              maxRttMs: z.number().int().min(1).max(5000).default(100),
              /** Never resend a packet older than this, ms. */
              maxAgeMs: z.number().int().min(20).max(5000).default(200),
            })
            .prefault({}),
        })
        .prefault({}),
    })
    .loose()
    .prefault({}),
  /** Room recordings (docs/recording.md): per-participant Ogg Opus files, started by clients with the `record` grant. */
  recording: z
    .object({
      /** Off: `record` answers MEDIA_FAILED (RECORDING_UNAVAILABLE) and /recordings lists nothing. */
      enabled: z.boolean().default(true),
      /** Where recordings go; default `<dataDir>/recordings`. About 15 MB per participant-hour at 32 kb/s speech, 29 MB at 64 kb/s music; nothing deletes old recordings. */
      dir: z.string().min(1).optional(),
      /**
       * Roll recordings into segments this long, seconds: a completed segment's files are closed
       * and (s3) uploaded at once. Unset: 300 with `storage` s3, one segment with local. 0: one segment.
       */
      segmentSeconds: z.number().int().min(0).optional(),
      /** Where finished files go (docs/recording.md "Storage"): `local` keeps them in `dir`; `s3` uploads them to a bucket. */
      storage: z.enum(['local', 's3']).default('local'),
      /** s3: keep a confirmed upload's local copy this long after its last write, seconds (0: remove once confirmed). */
      keepLocalSeconds: z.number().int().min(0).default(0),
      /** s3: the bucket on any S3-compatible service. Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profiles, roles). */
      s3: z
        .object({
          bucket: z.string().min(1).optional(),
          /** Key prefix, no leading or trailing `/` needed. */
          prefix: z.string().default('recordings'),
          region: z.string().min(1).default('us-east-1'),
          /** A non-AWS service's URL (MinIO, Ceph, R2, B2); unset: AWS. */
          endpoint: z.string().url().optional(),
          /** Path-style URLs (`host/bucket/key`): MinIO and Ceph usually need it. */
          forcePathStyle: z.boolean().default(false),
          /** Signed download links are made for this endpoint when clients reach the service by another URL than the server. */
          publicEndpoint: z.string().url().optional(),
          /** How long a download link (302 from /recordings/<id>/<file>) is valid, seconds. */
          linkSeconds: z.number().int().min(1).max(604_800).default(300),
          /** Files larger than this go up in parts of this size (multipart), MiB; S3's minimum is 5. */
          partMiB: z.number().int().min(5).max(5120).default(16),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Several nodes on one Redis (docs/cluster.md). Without redisUrl: one node, exactly as before.
   * With it: a node registry, room leases and join redirects to the room's owner node.
   */
  cluster: z
    .object({
      /** redis://[:password@]host:port/db shared by every node. Unset: no cluster. */
      redisUrl: z.string().optional(),
      /** This node's id in the registry; default `<hostname>-<random>`, new at every start. */
      nodeId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
      /** The signalling URL other nodes redirect clients to (ws[s]://host:port/ws); default this server's own URL. */
      publicUrl: z.string().regex(/^wss?:\/\//, 'expected ws:// or wss://').optional(),
      /** HMAC key of redirect tickets; every node needs the same. Default: derived from auth.hs256Secret (required with EdDSA). */
      secret: z.string().min(32).optional(),
      /** The node's registry entry is refreshed this often. */
      heartbeatMs: z.number().int().min(100).default(1000),
      /** A node whose entry was not refreshed for this long counts as dead (its rooms can be claimed). */
      nodeTtlMs: z.number().int().min(500).default(4000),
      /** A room's lease: the owner renews it every leaseMs/4; after a crash it lapses within this time (≤ 10 s). */
      leaseMs: z.number().int().min(1000).max(60_000).default(8000),
      /** Lifetime of a redirect ticket. */
      ticketTtlMs: z.number().int().min(1000).default(30_000),
      /** On SIGTERM: how long the node waits for its clients to move before it closes anyway. */
      drainTimeoutMs: z.number().int().min(0).default(10_000),
    })
    .superRefine((cluster, ctx) => {
      if (cluster.nodeTtlMs <= cluster.heartbeatMs) ctx.addIssue({ code: 'custom', path: ['nodeTtlMs'], message: 'must exceed cluster.heartbeatMs' });
    })
    .prefault({}),
  metrics: z
    .object({
      /** Serve /metrics. */
      enabled: z.boolean().default(true),
      /** Collect prom-client default process metrics (event loop lag, GC, memory). */
      defaultMetrics: z.boolean().default(true),
      /**
       * When set, /metrics needs `Authorization: Bearer <token>` (Prometheus `authorization`
       * in scrape_config). Unset: open, for a scraper on a private network.
       */
      token: z.string().min(16).optional(),
      /**
       * Label per-room series with the room name. Off: those series are summed over rooms (no room
       * names reach the scraper, and a server with many rooms keeps a bounded number of series).
       */
      roomLabels: z.boolean().default(true),
    })
    .prefault({}),
  /** Signed HTTP callbacks to applications (docs/recording.md "Webhooks"). Off while `urls` is empty. */
  webhooks: z
    .object({
      /** Receivers; every event goes to each of them (http or https). */
      urls: z.array(z.url({ protocol: /^https?$/ })).default([]),
      /** HMAC-SHA256 key the requests are signed with (VoxLink-Signature); required with urls. */
      key: z.string().min(16).optional(),
      /** Only these events; default all. */
      events: z.array(z.enum(webhookEventNames)).optional(),
      /** One attempt's timeout. A slow receiver costs a request slot this long, never a room. */
      timeoutMs: z.number().int().min(100).default(5000),
      /** Attempts per event and URL (the first included) before the event is given up. */
      maxAttempts: z.number().int().min(1).max(100).default(8),
      /** First retry after this, doubling per attempt (jittered), capped at retryMaxMs. */
      retryBaseMs: z.number().int().min(10).default(1000),
      retryMaxMs: z.number().int().min(10).default(60_000),
      /** Events waiting per URL (all rooms); beyond it new events are dropped and counted. */
      maxQueue: z.number().int().min(1).default(10_000),
      /** Requests in flight per URL. */
      concurrency: z.number().int().min(1).max(256).default(8),
    })
    .prefault({}),
  /** Offline transcription of stopped recordings (docs/recording.md "Transcription"). Off by default. */
  transcription: z
    .object({
      enabled: z.boolean().default(false),
      /** `pocketsphinx` (Debian's pocketsphinx_continuous, CPU) or `command` (the operator's recognizer). */
      engine: z.enum(['pocketsphinx', 'command']).default('pocketsphinx'),
      pocketsphinx: z
        .object({
          binary: z.string().min(1).default('pocketsphinx_continuous'),
          /** Folder with the acoustic model `en-us/`, `en-us.lm.bin` and `cmudict-en-us.dict` (Debian's pocketsphinx-en-us). */
          modelDir: z.string().min(1).default('/usr/share/pocketsphinx/model/en-us'),
        })
        .prefault({}),
      /** The `command` engine's argv (program first); it reads a 16 kHz mono WAV on stdin and writes JSON on stdout. */
      command: z.array(z.string().min(1)).min(1).optional(),
      /** Transcription threads (piscina); each job mostly waits on its recognizer process. */
      workers: z.number().int().min(1).max(64).default(1),
      /** One track's recognizer run may take this long before it is killed. */
      timeoutSec: z.number().int().min(1).default(3600),
      /** Also transcribe a mix room's `00-mix.opus` (speaker unknown). */
      includeMix: z.boolean().default(false),
    })
    .prefault({}),
});

export type VoxConfig = z.infer<typeof configSchema>;
export type VoxConfigInput = z.input<typeof configSchema>;

type EnvKind = 'string' | 'int' | 'number' | 'bool' | 'tristate' | 'list';
/** Environment variables → config paths. docs/configuration.md lists the same table. */
export const envVars: Record<string, { path: string; kind: EnvKind }> = {
  VOXLINK_HOST: { path: 'server.host', kind: 'string' },
  VOXLINK_PORT: { path: 'server.port', kind: 'int' },
  VOXLINK_PUBLIC_URL: { path: 'server.publicUrl', kind: 'string' },
  VOXLINK_TLS_CERT: { path: 'server.tls.certFile', kind: 'string' },
  VOXLINK_TLS_KEY: { path: 'server.tls.keyFile', kind: 'string' },
  VOXLINK_TLS_SELF_SIGNED: { path: 'server.tls.selfSigned', kind: 'tristate' },
  VOXLINK_DATA_DIR: { path: 'dataDir', kind: 'string' },
  VOXLINK_DEV_MODE: { path: 'auth.devMode', kind: 'bool' },
  VOXLINK_SECRET: { path: 'auth.hs256Secret', kind: 'string' },
  VOXLINK_EDDSA_PUBLIC_KEY: { path: 'auth.eddsaPublicKey', kind: 'string' },
  VOXLINK_JWT_ISSUER: { path: 'auth.issuer', kind: 'string' },
  VOXLINK_JWT_AUDIENCE: { path: 'auth.audience', kind: 'string' },
  VOXLINK_HEARTBEAT_INTERVAL_MS: { path: 'signalling.heartbeatIntervalMs', kind: 'int' },
  VOXLINK_HEARTBEAT_TIMEOUT_MS: { path: 'signalling.heartbeatTimeoutMs', kind: 'int' },
  VOXLINK_HELLO_TIMEOUT_MS: { path: 'signalling.helloTimeoutMs', kind: 'int' },
  VOXLINK_RESUME_GRACE_MS: { path: 'signalling.resumeGraceMs', kind: 'int' },
  VOXLINK_REPLAY_MAX_MESSAGES: { path: 'signalling.replayMaxMessages', kind: 'int' },
  VOXLINK_REPLAY_MAX_BYTES: { path: 'signalling.replayMaxBytes', kind: 'int' },
  VOXLINK_DEFAULT_ROOM_MODE: { path: 'signalling.defaultRoomMode', kind: 'string' },
  VOXLINK_REPLACE_IDENTITY: { path: 'signalling.replaceIdentity', kind: 'bool' },
  VOXLINK_P2P_MAX_SDP_BYTES: { path: 'p2p.maxSdpBytes', kind: 'int' },
  VOXLINK_P2P_RETURN_TO_DIRECT: { path: 'p2p.returnToDirect', kind: 'bool' },
  VOXLINK_P2P_SWITCH_TIMEOUT_MS: { path: 'p2p.switchTimeoutMs', kind: 'int' },
  VOXLINK_MAX_PAYLOAD_BYTES: { path: 'limits.maxPayloadBytes', kind: 'int' },
  VOXLINK_MESSAGES_PER_SECOND: { path: 'limits.messagesPerSecond', kind: 'number' },
  VOXLINK_MESSAGE_BURST: { path: 'limits.messageBurst', kind: 'int' },
  VOXLINK_RATE_CLOSE_AFTER_DROPPED: { path: 'limits.rateCloseAfterDropped', kind: 'int' },
  VOXLINK_MAX_BACKPRESSURE_BYTES: { path: 'limits.maxBackpressureBytes', kind: 'int' },
  VOXLINK_MAX_ROOMS_PER_SESSION: { path: 'limits.maxRoomsPerSession', kind: 'int' },
  VOXLINK_JOINS_PER_MINUTE: { path: 'limits.joinsPerMinute', kind: 'number' },
  VOXLINK_JOIN_BURST: { path: 'limits.joinBurst', kind: 'int' },
  VOXLINK_MAX_PARTICIPANTS_PER_ROOM: { path: 'limits.maxParticipantsPerRoom', kind: 'int' },
  VOXLINK_MAX_SESSIONS: { path: 'limits.maxSessions', kind: 'int' },
  VOXLINK_MAX_CONNECTIONS_PER_IP: { path: 'limits.maxConnectionsPerIp', kind: 'int' },
  VOXLINK_FRAME_CEILING_BYTES: { path: 'limits.frameCeilingBytes', kind: 'int' },
  VOXLINK_TURN_URLS: { path: 'turn.urls', kind: 'list' },
  VOXLINK_TURN_SECRET: { path: 'turn.secret', kind: 'string' },
  VOXLINK_TURN_TTL_SEC: { path: 'turn.ttlSec', kind: 'int' },
  VOXLINK_STUN_URLS: { path: 'turn.stunUrls', kind: 'list' },
  VOXLINK_TURN_STORE: { path: 'turn.store', kind: 'string' },
  VOXLINK_TURN_REALM: { path: 'turn.realm', kind: 'string' },
  VOXLINK_TURN_REDIS_URL: { path: 'turn.redisUrl', kind: 'string' },
  VOXLINK_TURN_POSTGRES_URL: { path: 'turn.postgresUrl', kind: 'string' },
  VOXLINK_TURN_REFRESH_SEC: { path: 'turn.refreshSec', kind: 'int' },
  VOXLINK_TURN_USER_QUOTA: { path: 'turn.userQuota', kind: 'int' },
  VOXLINK_TURN_TOTAL_QUOTA: { path: 'turn.totalQuota', kind: 'int' },
  VOXLINK_TURN_MAX_BPS: { path: 'turn.maxBps', kind: 'int' },
  VOXLINK_TURN_STATS_REDIS_URL: { path: 'turn.stats.redisUrl', kind: 'string' },
  VOXLINK_TURN_STATS_USER_LABELS: { path: 'turn.stats.userLabels', kind: 'bool' },
  VOXLINK_MEDIA: { path: 'media.enabled', kind: 'bool' },
  VOXLINK_RECORDING: { path: 'recording.enabled', kind: 'bool' },
  VOXLINK_RECORDING_DIR: { path: 'recording.dir', kind: 'string' },
  VOXLINK_RECORDING_SEGMENT_SECONDS: { path: 'recording.segmentSeconds', kind: 'int' },
  VOXLINK_RECORDING_STORAGE: { path: 'recording.storage', kind: 'string' },
  VOXLINK_RECORDING_KEEP_LOCAL_SECONDS: { path: 'recording.keepLocalSeconds', kind: 'int' },
  VOXLINK_S3_BUCKET: { path: 'recording.s3.bucket', kind: 'string' },
  VOXLINK_S3_PREFIX: { path: 'recording.s3.prefix', kind: 'string' },
  VOXLINK_S3_REGION: { path: 'recording.s3.region', kind: 'string' },
  VOXLINK_S3_ENDPOINT: { path: 'recording.s3.endpoint', kind: 'string' },
  VOXLINK_S3_FORCE_PATH_STYLE: { path: 'recording.s3.forcePathStyle', kind: 'bool' },
  VOXLINK_S3_PUBLIC_ENDPOINT: { path: 'recording.s3.publicEndpoint', kind: 'string' },
  VOXLINK_MEDIA_WORKERS: { path: 'media.workers', kind: 'int' },
  VOXLINK_ANNOUNCED_IP: { path: 'media.announcedIp', kind: 'string' },
  VOXLINK_RTC_LISTEN_IP: { path: 'media.listenIp', kind: 'string' },
  VOXLINK_RTC_MIN_PORT: { path: 'media.rtcMinPort', kind: 'int' },
  VOXLINK_RTC_MAX_PORT: { path: 'media.rtcMaxPort', kind: 'int' },
  VOXLINK_SLOTS: { path: 'media.slots', kind: 'int' },
  VOXLINK_FAST_SRTP: { path: 'media.fastSrtp', kind: 'bool' },
  VOXLINK_UDP_PORT: { path: 'media.udpPort', kind: 'int' },
  VOXLINK_UDP_BATCH: { path: 'media.udpBatch', kind: 'bool' },
  VOXLINK_MEDIA_STATS_INTERVAL_MS: { path: 'media.statsIntervalMs', kind: 'int' },
  VOXLINK_MEDIA_REQUEST_TIMEOUT_MS: { path: 'media.requestTimeoutMs', kind: 'int' },
  VOXLINK_MEDIA_MAX_ROOMS_PER_WORKER: { path: 'media.maxRoomsPerWorker', kind: 'int' },
  VOXLINK_MEDIA_PPS_CAPACITY: { path: 'media.ppsCapacity', kind: 'int' },
  VOXLINK_MEDIA_MAX_RECOVERIES: { path: 'media.maxRecoveries', kind: 'int' },
  VOXLINK_ROOM_WORKER_CAPACITY: { path: 'media.roomWorkerCapacity', kind: 'int' },
  VOXLINK_SPILL_TRANSPORT: { path: 'media.spillTransport', kind: 'string' },
  VOXLINK_MIX_VOICE_THRESHOLD_DBFS: { path: 'media.mixing.voiceThresholdDbfs', kind: 'number' },
  VOXLINK_MIX_HANGOVER_MS: { path: 'media.mixing.hangoverMs', kind: 'int' },
  VOXLINK_MIX_OPUS_PROFILE: { path: 'media.mixing.opusProfile', kind: 'string' },
  VOXLINK_DRED: { path: 'media.resilience.dred.enabled', kind: 'bool' },
  VOXLINK_DRED_LOSS_ON_PCT: { path: 'media.resilience.dred.lossOnPct', kind: 'number' },
  VOXLINK_DRED_LOSS_OFF_PCT: { path: 'media.resilience.dred.lossOffPct', kind: 'number' },
  VOXLINK_DRED_MIN_ON_MS: { path: 'media.resilience.dred.minOnMs', kind: 'int' },
  VOXLINK_REDIS_URL: { path: 'cluster.redisUrl', kind: 'string' },
  VOXLINK_NODE_ID: { path: 'cluster.nodeId', kind: 'string' },
  VOXLINK_CLUSTER_PUBLIC_URL: { path: 'cluster.publicUrl', kind: 'string' },
  VOXLINK_CLUSTER_SECRET: { path: 'cluster.secret', kind: 'string' },
  VOXLINK_CLUSTER_HEARTBEAT_MS: { path: 'cluster.heartbeatMs', kind: 'int' },
  VOXLINK_CLUSTER_NODE_TTL_MS: { path: 'cluster.nodeTtlMs', kind: 'int' },
  VOXLINK_CLUSTER_LEASE_MS: { path: 'cluster.leaseMs', kind: 'int' },
  VOXLINK_CLUSTER_TICKET_TTL_MS: { path: 'cluster.ticketTtlMs', kind: 'int' },
  VOXLINK_CLUSTER_DRAIN_TIMEOUT_MS: { path: 'cluster.drainTimeoutMs', kind: 'int' },
  VOXLINK_METRICS: { path: 'metrics.enabled', kind: 'bool' },
  VOXLINK_METRICS_TOKEN: { path: 'metrics.token', kind: 'string' },
  VOXLINK_METRICS_ROOM_LABELS: { path: 'metrics.roomLabels', kind: 'bool' },
  VOXLINK_WEBHOOK_URLS: { path: 'webhooks.urls', kind: 'list' },
  VOXLINK_WEBHOOK_KEY: { path: 'webhooks.key', kind: 'string' },
  VOXLINK_TRANSCRIPTION: { path: 'transcription.enabled', kind: 'bool' },
  VOXLINK_TRANSCRIPTION_ENGINE: { path: 'transcription.engine', kind: 'string' },
  VOXLINK_TRANSCRIPTION_WORKERS: { path: 'transcription.workers', kind: 'int' },
};

function parseEnvValue(name: string, raw: string, kind: EnvKind): unknown {
  switch (kind) {
    case 'string':
      return raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new VoxError('CONFIG_INVALID', `${name}=${JSON.stringify(raw)}: expected true/false`);
    case 'tristate':
      if (/^auto$/i.test(raw)) return 'auto';
      return parseEnvValue(name, raw, 'bool');
    case 'int':
    case 'number': {
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value) || (kind === 'int' && !Number.isInteger(value))) {
        throw new VoxError('CONFIG_INVALID', `${name}=${JSON.stringify(raw)}: expected ${kind === 'int' ? 'an integer' : 'a number'}`);
      }
      return value;
    }
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || next === null || typeof next !== 'object') node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

export interface LoadConfigOptions {
  /** Environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Extra values applied last (tests, CLI flags). Deep-merged. */
  overrides?: VoxConfigInput;
}

function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const existing = out[key];
    if (value && typeof value === 'object' && !Array.isArray(value) && existing && typeof existing === 'object' && !Array.isArray(existing)) {
      out[key] = deepMerge(existing as Record<string, unknown>, value as Record<string, unknown>);
    } else if (value !== undefined) {
      out[key] = value;
    }
  }
  return out;
}

/** A loopback host name or address: browsers treat http:// there as a secure context. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Validate a config object (defaults filled in). Throws VoxError CONFIG_INVALID naming the bad key. */
export function parseConfig(input: unknown, source = 'config'): VoxConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new VoxError('CONFIG_INVALID', `invalid ${source}:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  if (config.signalling.heartbeatTimeoutMs <= config.signalling.heartbeatIntervalMs) {
    throw new VoxError('CONFIG_INVALID', `invalid ${source}:\n  signalling.heartbeatTimeoutMs must exceed signalling.heartbeatIntervalMs`);
  }
  if ((config.server.tls.certFile === undefined) !== (config.server.tls.keyFile === undefined)) {
    throw new VoxError('CONFIG_INVALID', `invalid ${source}:\n  server.tls: set both certFile and keyFile, or neither`);
  }
  if (config.media.rtcMinPort > config.media.rtcMaxPort) {
    throw new VoxError('CONFIG_INVALID', `invalid ${source}:\n  media.rtcMinPort must be ≤ media.rtcMaxPort`);
  }
  if (config.media.udpPort !== undefined && config.media.udpPort + config.media.workers - 1 > 65535) {
    throw new VoxError('CONFIG_INVALID', `invalid ${source}:\n  media.udpPort + media.workers − 1 must be ≤ 65535`);
  }
  if (config.recording.enabled && config.recording.storage === 's3' && config.recording.s3.bucket === undefined) {
    throw new VoxError('CONFIG_INVALID', `invalid ${source}:\n  recording.storage s3 needs recording.s3.bucket (VOXLINK_S3_BUCKET)`);
  }
  if (config.webhooks.urls.length > 0 && config.webhooks.key === undefined) {
    throw new VoxError('CONFIG_INVALID', `invalid ${source}:\n  webhooks.urls needs webhooks.key (VOXLINK_WEBHOOK_KEY, at least 16 characters) to sign the requests`);
  }
  if (config.transcription.enabled && config.transcription.engine === 'command' && config.transcription.command === undefined) {
    throw new VoxError('CONFIG_INVALID', `invalid ${source}:\n  transcription.engine command needs transcription.command (the recognizer's argv)`);
  }
  const explicitHost = (input as { server?: { host?: unknown } } | null)?.server?.host !== undefined;
  if (config.auth.devMode === undefined) {
    const noKey = config.auth.hs256Secret === undefined && config.auth.eddsaPublicKey === undefined;
    if (noKey && explicitHost && !isLoopback(config.server.host)) {
      throw new VoxError(
        'CONFIG_INVALID',
        `invalid ${source}:\n  no auth.hs256Secret or auth.eddsaPublicKey: dev mode (tokens for anyone who asks) ` +
          `only starts on loopback, not server.host ${config.server.host}. Configure a secret (VOXLINK_SECRET), ` +
          'or set auth.devMode true (VOXLINK_DEV_MODE=true) to run dev mode on that address anyway.',
      );
    }
    config.auth.devMode = noKey;
  }
  if (config.auth.devMode && !explicitHost) config.server.host = '127.0.0.1';
  config.dataDir = resolve(config.dataDir);
  return config;
}

/** defaults ← JSON file (VOXLINK_CONFIG) ← VOXLINK_* env ← overrides. */
export function loadConfig(options: LoadConfigOptions = {}): VoxConfig {
  const env = options.env ?? process.env;
  let layered: Record<string, unknown> = {};
  const file = env.VOXLINK_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new VoxError('CONFIG_INVALID', `VOXLINK_CONFIG=${file}: cannot read (${(err as Error).message})`, { cause: err });
    }
    try {
      layered = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new VoxError('CONFIG_INVALID', `VOXLINK_CONFIG=${file}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    if (!layered || typeof layered !== 'object' || Array.isArray(layered)) {
      throw new VoxError('CONFIG_INVALID', `VOXLINK_CONFIG=${file}: expected a JSON object`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, { path, kind }] of Object.entries(envVars)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(fromEnv, path, parseEnvValue(name, raw, kind));
  }
  layered = deepMerge(layered, fromEnv);
  if (options.overrides) layered = deepMerge(layered, options.overrides as Record<string, unknown>);
  return parseConfig(layered, file ? `config (${file} + environment)` : 'config (environment)');
}

/** The recordings folder the config asks for (absolute), or undefined when recording is off. */
export function recordingDirOf(config: { dataDir: string; recording: { enabled: boolean; dir?: string | undefined } }): string | undefined {
  if (!config.recording.enabled) return undefined;
  return resolve(config.recording.dir ?? join(config.dataDir, 'recordings'));
}

/** Segment length of recordings, ms (0: one segment): `recording.segmentSeconds`, by default 300 s with s3 storage, off with local. */
export function recordingSegmentMsOf(config: Pick<VoxConfig, 'recording'>): number {
  const { segmentSeconds, storage } = config.recording;
  return (segmentSeconds ?? (storage === 's3' ? 300 : 0)) * 1000;
}
