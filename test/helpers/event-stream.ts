/** The dashboard's event stream (server-sent events) read by a test, as a page reads it. */
import http from 'node:http';

/**
 * GET /api/events on 127.0.0.1:`port`: `each` gets every event that has a name, with its data line
 * parsed as JSON (undefined without one); `onResponse` the response as it starts (status, headers).
 * The request is sent; destroy it to close the stream. Its errors come as its 'error' events.
 */
export function openEventStream(port: number, each: (event: string, data: unknown) => void, onResponse?: (res: http.IncomingMessage) => void): http.ClientRequest {
  const req = http.request({ host: '127.0.0.1', port, path: '/api/events' });
  req.on('response', (res) => {
    onResponse?.(res);
    let buffer = '';
    res.on('data', (d: Buffer) => {
      buffer += d.toString();
      let at;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined) each(event, data === undefined ? undefined : JSON.parse(data));
      }
    });
  });
  req.end();
  return req;
}
