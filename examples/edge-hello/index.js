// Hello world at the edge, as Fly's runtime first wrote it; each request leaves a line in `hangar logs`.
fly.http.respondWith((request) => {
  console.log(`${request.method} ${new URL(request.url).pathname}`);
  return new Response("Hello World\n", { headers: { "content-type": "text/plain; charset=utf-8" } });
});
