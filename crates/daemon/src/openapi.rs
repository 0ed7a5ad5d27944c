//! `/api/v1/openapi.json`: the OpenAPI 3.1 description of the REST API
//! (written by hand next to the routes in [`crate::rest`]).
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

/// The document.
pub fn document() -> Value {
    let key = json!({"name": "key", "in": "path", "required": true,
        "description": "the torrent's id, or its v1 or v2 info-hash in hex",
        "schema": {"type": "string"}});
    let ok = |what: &str, schema: Value| json!({"description": what, "content": {"application/json": {"schema": schema}}});
    let err = json!({"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let torrent = json!({"$ref": "#/components/schemas/Torrent"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "shoal daemon", "version": env!("CARGO_PKG_VERSION"),
            "description": "shoal's own API. Transmission's RPC is served at /transmission/rpc as well."},
        "paths": {
            "/api/v1/session": {"get": {"summary": "Session totals, DHT, flood search, DHT publishing, the built-in tracker (`tracker`: enabled, announce URLs, torrents, peers, indexed), disk and settings",
                "responses": {"200": ok("the session", json!({"type": "object"}))}}},
            "/api/v1/torrents": {
                "get": {"summary": "Every torrent", "responses": {"200": ok("torrents", json!({"type": "array", "items": torrent}))}},
                "post": {"summary": "Add a torrent",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Add"}}}},
                    "responses": {"201": ok("added", torrent.clone()), "200": ok("already there (duplicate: true)", torrent.clone()), "400": err.clone()}}},
            "/api/v1/torrents/{key}": {
                "parameters": [key.clone()],
                "get": {"summary": "One torrent with its limits and trackers", "responses": {"200": ok("the torrent", torrent.clone()), "404": err.clone()}},
                "delete": {"summary": "Remove a torrent",
                    "parameters": [{"name": "delete_data", "in": "query", "schema": {"type": "boolean"}}],
                    "responses": {"200": ok("removed", json!({"type": "object"})), "404": err.clone()}}},
            "/api/v1/torrents/{key}/{action}": {
                "parameters": [key.clone(), {"name": "action", "in": "path", "required": true,
                    "schema": {"enum": ["pause", "resume", "start_now", "recheck", "reannounce"]}}],
                "post": {"summary": "Act on a torrent", "responses": {"200": ok("the torrent", torrent.clone()), "404": err.clone()}}},
            "/api/v1/torrents/{key}/peers": {"parameters": [key.clone()], "get": {"summary": "Connected peers", "responses": {"200": ok("peers", json!({"type": "array"}))}},
                "post": {"summary": "Give the torrent peer addresses to connect to",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["peers"],
                        "properties": {"peers": {"type": "array", "maxItems": 200, "items": {"type": "string", "description": "ip:port"}}}}}}},
                    "responses": {"200": ok("how many were added", json!({"type": "object", "properties": {"added": {"type": "integer"}}})), "400": err.clone(), "404": err.clone()}}},
            "/api/v1/search": {"get": {"summary": "Keyword search: flooding among connected shoal peers (BEP 10 shoal_search), the daemon's own torrents, the DHT keyword index and trackers' central indexes; merged by info-hash and ranked by relevance (the shape of `shoal search --json`)",
                "parameters": [
                    {"name": "q", "in": "query", "required": true, "description": "the words to look for (at most 256 bytes, 16 words, one keyword of 3+ letters or digits)", "schema": {"type": "string", "maxLength": 256}},
                    {"name": "timeout_ms", "in": "query", "description": "how long to collect answers (default 3000, 100 to 30000)", "schema": {"type": "integer"}},
                    {"name": "sources", "in": "query", "description": "comma-separated subset of flood, dht, tracker, local (default: every available one)", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "description": "most results (default 50)", "schema": {"type": "integer", "minimum": 1}},
                    {"name": "tracker", "in": "query", "description": "an announce URL whose central index to ask (repeatable, at most 8; default: the trackers of the daemon's torrents)", "schema": {"type": "string"}}],
                "responses": {"200": ok("the results", json!({"$ref": "#/components/schemas/SearchResults"})), "400": err.clone()}}},
            "/api/v1/torrents/{key}/pieces": {"parameters": [key.clone()], "get": {"summary": "Verified pieces (base64 bitfield)", "responses": {"200": ok("pieces", json!({"type": "object"}))}}},
            "/api/v1/torrents/{key}/trackers": {"parameters": [key.clone()], "get": {"summary": "Trackers and their answers", "responses": {"200": ok("trackers", json!({"type": "array"}))}}},
            "/api/v1/torrents/{key}/files": {"parameters": [key], "get": {"summary": "Files (v2 pieces roots), progress, priorities and stream_url (the file's /stream path; null for pad files)", "responses": {"200": ok("files", json!({"type": "array"}))}},
                "post": {"summary": "Set file priorities (0 skips a file, 1 low, 2 normal, 3 high): the whole list, or some by index",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "priorities": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}},
                        "set": {"type": "object", "additionalProperties": {"type": "integer"}}}}}}},
                    "responses": {"200": ok("the priorities now", json!({"type": "object"})), "400": err.clone(), "404": err.clone(), "409": err.clone()}}},
            "/api/v1/login": {
                "get": {"summary": "Whether credentials are needed, and present", "responses": {"200": ok("state", json!({"type": "object"}))}},
                "post": {"summary": "Check a user and password; set the web UI's session cookie (HttpOnly, SameSite=Strict), accepted like Basic auth",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                        "properties": {"user": {"type": "string"}, "password": {"type": "string"}}, "required": ["user", "password"]}}}},
                    "responses": {"200": ok("logged in", json!({"type": "object"})), "401": err.clone()}}},
            "/api/v1/dht": {"get": {"summary": "DHT address, node id, routing table size and counters", "responses": {"200": ok("the DHT", json!({"type": "object"}))}}},
            "/api/v1/logout": {"post": {"summary": "Clear the session cookie", "responses": {"200": ok("logged out", json!({"type": "object"}))}}},
            "/stream/{info_hash}/{file_index}": {
                "parameters": [{"name": "info_hash", "in": "path", "required": true, "description": "the torrent's v1 or v2 info-hash in hex", "schema": {"type": "string"}},
                    {"name": "file_index", "in": "path", "required": true, "description": "the file's index as `shoal info` numbers them", "schema": {"type": "integer"}}],
                "get": {"summary": "A file while it downloads (GET and HEAD). Range: bytes=a-b, a-, -n; of several ranges only the first satisfiable one is answered (206, never multipart). ETag, Last-Modified, If-None-Match, If-Range. A read waits for its bytes (60 s), then the connection is closed",
                    "responses": {"200": {"description": "the whole file"}, "206": {"description": "one range, with Content-Range"},
                        "304": {"description": "If-None-Match matched"}, "404": {"description": "no such torrent or file"},
                        "416": {"description": "the range lies past the end (Content-Range: bytes */len)"},
                        "503": {"description": "the metadata has not arrived yet (Retry-After)"}}}},
            "/stream/{info_hash}.m3u": {
                "parameters": [{"name": "info_hash", "in": "path", "required": true, "description": "the torrent's v1 or v2 info-hash in hex", "schema": {"type": "string"}}],
                "get": {"summary": "An extended M3U playlist of the torrent's audio and video files, in file order, with absolute stream URLs from the request's Host",
                    "responses": {"200": {"description": "the playlist", "content": {"audio/x-mpegurl": {}}}, "404": {"description": "no such torrent"},
                        "503": {"description": "the metadata has not arrived yet (Retry-After)"}}}},
            "/api/v1/events": {"get": {"summary": "Server-sent events: added, metadata, state, progress, completed, error, removed, lagged",
                "responses": {"200": {"description": "an event stream", "content": {"text/event-stream": {}}}}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
            "SearchResults": {"type": "object", "required": ["query", "results", "errors"], "properties": {
                "query": {"type": "string"},
                "results": {"type": "array", "items": {"type": "object", "required": ["info_hash", "name", "found", "magnet"], "properties": {
                    "info_hash": {"type": "string"}, "name": {"type": "string"}, "size": {"type": "integer"}, "files": {"type": "integer"},
                    "seeds": {"type": "integer"}, "leechers": {"type": "integer"},
                    "found": {"type": "array", "items": {"type": "string"}, "description": "where: `flood ADDR` (the neighbour it came back through), `local`, `dht`, `tracker URL`"},
                    "trackers": {"type": "array", "items": {"type": "string"}}, "score": {"type": "number"},
                    "magnet": {"type": "string"}, "download": {"type": "string"}}}},
                "errors": {"type": "array", "items": {"type": "object", "properties": {"source": {"type": "string"}, "error": {"type": "string"}}}},
                "flood": {"type": ["object", "null"], "properties": {"query_id": {"type": "string"}, "peers": {"type": "integer"}}}}},
            "Add": {"type": "object", "description": "exactly one of magnet, url, path, metainfo",
                "properties": {"magnet": {"type": "string"}, "url": {"type": "string"}, "path": {"type": "string"},
                    "metainfo": {"type": "string", "contentEncoding": "base64"}, "download_dir": {"type": "string"},
                    "paused": {"type": "boolean"}, "labels": {"type": "array", "items": {"type": "string"}}}},
            "Torrent": {"type": "object", "properties": {
                "id": {"type": "integer"}, "info_hash": {"type": "string"},
                "info_hash_v1": {"type": ["string", "null"]}, "info_hash_v2": {"type": ["string", "null"]},
                "name": {"type": "string"}, "state": {"enum": ["checking", "fetching metadata", "queued", "downloading", "seeding", "paused", "error", "stopped"]},
                "progress": {"type": "number"}, "wanted_bytes": {"type": "integer"}, "verified_bytes": {"type": "integer"},
                "downloaded": {"type": "integer"}, "uploaded": {"type": "integer"}, "download_rate": {"type": "integer"},
                "upload_rate": {"type": "integer"}, "peers": {"type": "integer"}, "labels": {"type": "array", "items": {"type": "string"}},
                "save_path": {"type": "string"}, "error": {"type": ["string", "null"]}}},
        }},
    })
}

/// The handler.
pub async fn handler() -> impl IntoResponse {
    Json(document())
}
