// Minimal RFC 6455 server side on node:http, enough to stand in for aiohttp's websocket in ComfyUI:
// the upgrade handshake, unmasking client frames, sending unmasked text/binary frames, close and ping.
// No extensions (no permessage-deflate), no fragmentation on send; fragmented client frames are joined.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface FakeWebSocket {
  readonly query: URLSearchParams;
  sendText(text: string): void;
  sendBinary(data: Buffer): void;
  /** Closes cleanly with a close frame. */
  close(code?: number): void;
  /** Drops the TCP connection without a close frame (a dead link, a killed server). */
  destroy(): void;
  readonly open: boolean;
  onText?: (text: string) => void;
  onClose?: () => void;
}

function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  let header: Buffer;
  if (len < 126) {
    header = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

/** Completes the handshake on an 'upgrade' event; returns null (after answering 400) for a bad request. */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex): FakeWebSocket | null {
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return null;
  }
  const accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' + `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );

  let buffered = Buffer.alloc(0);
  let fragments: Buffer[] = [];
  let open = true;
  const query = new URL(req.url ?? '/', 'http://localhost').searchParams;

  const ws: FakeWebSocket = {
    query,
    get open() {
      return open;
    },
    sendText: (text) => {
      if (open) socket.write(frame(0x1, Buffer.from(text, 'utf8')));
    },
    sendBinary: (data) => {
      if (open) socket.write(frame(0x2, data));
    },
    close: (code = 1000) => {
      if (!open) return;
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code, 0);
      socket.write(frame(0x8, payload));
      socket.end();
      finish();
    },
    destroy: () => {
      socket.destroy();
      finish();
    },
  };

  function finish(): void {
    if (!open) return;
    open = false;
    ws.onClose?.();
  }

  function parse(): void {
    for (;;) {
      if (buffered.length < 2) return;
      const b0 = buffered[0]!;
      const b1 = buffered[1]!;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (buffered.length < 4) return;
        len = buffered.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (buffered.length < 10) return;
        len = Number(buffered.readBigUInt64BE(2));
        offset = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const maskEnd = offset + (masked ? 4 : 0);
      if (buffered.length < maskEnd + len) return;
      const payload = Buffer.from(buffered.subarray(maskEnd, maskEnd + len));
      if (masked) {
        const mask = buffered.subarray(offset, maskEnd);
        for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i % 4]!;
      }
      buffered = buffered.subarray(maskEnd + len);
      if (opcode === 0x8) {
        if (open) socket.write(frame(0x8, payload.subarray(0, 2)));
        socket.end();
        finish();
        return;
      }
      if (opcode === 0x9) {
        socket.write(frame(0xa, payload));
        continue;
      }
      if (opcode === 0x1 || opcode === 0x0 || opcode === 0x2) {
        fragments.push(payload);
        if (fin) {
          const whole = Buffer.concat(fragments);
          fragments = [];
          if (opcode !== 0x2) ws.onText?.(whole.toString('utf8'));
        }
      }
    }
  }

  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    parse();
  });
  socket.on('close', finish);
  socket.on('error', finish);
  return ws;
}
