// One hostname, three origins by path: /blog and /docs to their apps, the rest to the static site.
// Each origin gets the path without its mount (/blog/post-1 arrives at the blog as /post-1), Host set
// to the origin's and X-Forwarded-Host to the one the client asked for.
import { mount, proxy } from "@hangar/edge-std";

/** The origins: from env (secrets or [env]), else the apps' .internal names, or local ports in development. */
function origins(env) {
  const local = app.env === "development";
  return {
    blog: env.BLOG_ORIGIN ?? (local ? "http://localhost:3001" : "http://blog.internal"),
    docs: env.DOCS_ORIGIN ?? (local ? "http://localhost:3002" : "http://docs.internal"),
    site: env.STATIC_ORIGIN ?? (local ? "http://localhost:3003" : "http://static.internal"),
  };
}

let router;
function routerFor(env) {
  if (!router) {
    const o = origins(env);
    router = mount({ "/blog": proxy(o.blog), "/docs": proxy(o.docs), "/": proxy(o.site) });
  }
  return router;
}

export default {
  fetch(request, env) {
    return routerFor(env)(request);
  },
};
