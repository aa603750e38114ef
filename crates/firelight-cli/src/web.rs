//! `firelight web`: serve the browser page (`web/dist`, built by `web/build.sh`) from a tiny
//! static file server on this machine. The page computes everything in the visitor's browser;
//! this only hands out its files.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

use firelight::prelude::*;

/// `firelight web`'s options.
#[derive(clap::Args, Debug)]
pub(crate) struct WebArgs {
    /// The built page [default: web/dist in this source tree].
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// The port (0: any free one).
    #[arg(long, default_value_t = 8080)]
    pub(crate) port: u16,
    /// The address to listen on (0.0.0.0 to let other machines in).
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: String,
}

fn default_dir() -> PathBuf {
    match std::env::var_os("FIRELIGHT_WEB") {
        Some(dir) => PathBuf::from(dir),
        None => firelight::bundled::models_dir()
            .parent()
            .unwrap_or(Path::new("."))
            .join("web")
            .join("dist"),
    }
}

pub(crate) fn run(args: WebArgs) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    if !dir.join("index.html").is_file() || !dir.join("pkg").is_dir() {
        return Err(Error::parameter(
            "dir",
            dir.display().to_string(),
            "no built page here (index.html and pkg/); build it with web/build.sh",
        ));
    }
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .map_err(|e| Error::io(format!("{}:{}", args.host, args.port), e))?;
    let address = listener.local_addr().map_err(|e| Error::io(&dir, e))?;
    println!(
        "serving {} at http://{address}/ (Ctrl-C stops)",
        dir.display()
    );
    for stream in listener.incoming().flatten() {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, &dir);
        });
    }
    Ok(())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The file a request path names under `dir`, or `None` for a path that leaves it.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path)?;
    let mut file = dir.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => file.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if file.is_dir() {
        file.push("index.html");
    }
    Some(file)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn serve(stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are not needed: read past them.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let mut stream = stream;
    let reply = |stream: &mut TcpStream, status: &str, kind: &str, body: &[u8], head: bool| {
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        if !head {
            stream.write_all(body)?;
        }
        stream.flush()
    };
    if method != "GET" && method != "HEAD" {
        return reply(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
            false,
        );
    }
    let head = method == "HEAD";
    match resolve(dir, target).map(|file| (std::fs::read(&file), file)) {
        Some((Ok(body), file)) => reply(&mut stream, "200 OK", content_type(&file), &body, head),
        Some((Err(_), _)) => reply(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            head,
        ),
        None => reply(
            &mut stream,
            "403 Forbidden",
            "text/plain",
            b"outside the page\n",
            head,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_stay_inside_the_page() {
        let dir = Path::new("/srv/page");
        assert_eq!(
            resolve(dir, "/pkg/firelight_web.js?v=1"),
            Some(dir.join("pkg/firelight_web.js"))
        );
        assert_eq!(
            resolve(dir, "/model%2Fmodel.onnx"),
            Some(dir.join("model/model.onnx"))
        );
        assert_eq!(resolve(dir, "/../etc/passwd"), None);
        assert_eq!(resolve(dir, "/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(dir, "/bad%zz"), None);
        assert_eq!(content_type(Path::new("a.wasm")), "application/wasm");
    }
}
