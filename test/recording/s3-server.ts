import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

/**
 * s3rver (an S3-protocol HTTP server from npm, files in a folder) as the tests' object store, on a
 * fixed port so it can be stopped and started again at the same address with the same data.
 */

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverClass = new (options: { address: string; port: number; silent: boolean; directory: string }) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

/** s3rver checks signatures against these. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export class TestS3 {
  readonly endpoint: string;
  readonly client: S3Client;
  #server: S3rverInstance | null = null;

  constructor(
    readonly port: number,
    readonly directory: string,
  ) {
    this.endpoint = `http://127.0.0.1:${port}`;
    this.client = new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  get running(): boolean {
    return this.#server !== null;
  }

  async start(): Promise<void> {
    const server = new S3rver({ address: '127.0.0.1', port: this.port, silent: true, directory: this.directory });
    await server.run();
    this.#server = server;
  }

  /** Stops it now: open keep-alive connections are cut (the uploader's client keeps some). */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    server.httpServer?.closeAllConnections();
    await server.close();
  }

  async createBucket(name: string): Promise<void> {
    await this.client.send(new CreateBucketCommand({ Bucket: name }));
  }

  async keys(bucket: string, prefix = ''): Promise<string[]> {
    const out = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key!).sort();
  }

  async get(bucket: string, key: string): Promise<Buffer> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  async close(): Promise<void> {
    await this.stop();
    this.client.destroy();
  }
}
