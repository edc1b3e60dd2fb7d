/** `HTTP/1.1 <status> <reason>\r\n`, for answers written straight to a socket. */
export function statusLine(status: number, reason: string): string {
  return `HTTP/1.1 ${status} ${reason}\r\n`;
}

/** A flat name/value list as header lines, each ending in CRLF. */
export function headerLines(headers: readonly string[]): string {
  let s = "";
  for (let i = 0; i < headers.length; i += 2) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return s;
}
