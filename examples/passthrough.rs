//! `passthrough`: the smallest useful HTTP/1 reverse proxy, the yardstick sluice
//! is measured against. Every request goes to `--upstream` with the same method,
//! path, headers and body; the answer comes back as is. No routing, no body
//! parsing, one keep-alive connection pool. Prints `listening on http://ADDR`;
//! stops on Ctrl-C.

use clap::Parser;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{server::conn::http1, service::service_fn, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;

mod common;

type Body = BoxBody<Bytes, hyper::Error>;

async fn forward(
    client: Arc<Client<HttpConnector, Incoming>>,
    base: Arc<str>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = match format!("{base}{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(error(StatusCode::BAD_REQUEST)),
    };
    *req.uri_mut() = uri;
    req.headers_mut().remove(hyper::header::HOST);
    match client.request(req).await {
        Ok(resp) => Ok(resp.map(|b| b.boxed())),
        Err(_) => Ok(error(StatusCode::BAD_GATEWAY)),
    }
}

fn error(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed());
    *resp.status_mut() = status;
    resp
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = common::Args::parse();
    let base: Arc<str> = args.upstream.trim_end_matches('/').into();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
    common::serve(args.port, |stream| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| forward(client.clone(), base.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    })
    .await
}
