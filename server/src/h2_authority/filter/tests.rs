use super::*;
use crate::h2_authority::frame::frame;
use crate::h2_authority::frame::{FLAG_END_HEADERS, FLAG_END_STREAM};

const TYPE_DATA: u8 = 0x0;
const TYPE_SETTINGS: u8 = 0x4;

fn request_fields(authority: &[u8], path: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (b":method".to_vec(), b"POST".to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
        (b":path".to_vec(), path.to_vec()),
        (b":authority".to_vec(), authority.to_vec()),
        (b"content-type".to_vec(), b"application/grpc".to_vec()),
        (b"te".to_vec(), b"trailers".to_vec()),
    ]
}

/// A client connection: preface, SETTINGS, then for each request a HEADERS
/// frame encoded by one stateful HPACK encoder (so later blocks refer to
/// the dynamic table) and a DATA frame.
fn client_bytes(authority: &[u8], requests: u32) -> Vec<u8> {
    let mut encoder = loona_hpack::Encoder::new();
    let mut out = PREFACE.to_vec();
    out.extend(frame(TYPE_SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]));
    for i in 0..requests {
        let stream_id = 2 * i + 1;
        let path = format!("/etcdserverpb.KV/Range{i}");
        let fields = request_fields(authority, path.as_bytes());
        let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        out.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, stream_id, &block));
        out.extend(frame(
            TYPE_DATA,
            FLAG_END_STREAM,
            stream_id,
            b"\0\0\0\0\x02\x0a\x00",
        ));
    }
    out
}

/// Splits a byte stream after the preface into frames.
fn frames(mut bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    bytes = &bytes[PREFACE.len()..];
    let mut out = Vec::new();
    while let Some(header) = FrameHeader::parse(bytes) {
        let end = HEADER_BYTES + header.length;
        out.push((header, bytes[HEADER_BYTES..end].to_vec()));
        bytes = &bytes[end..];
    }
    assert!(bytes.is_empty(), "trailing partial frame");
    out
}

fn filter_in_pieces(input: &[u8], piece_bytes: usize) -> (InboundFilter, Vec<u8>) {
    let mut filter = InboundFilter::new();
    let mut out = Vec::new();
    for piece in input.chunks(piece_bytes) {
        filter.push(piece, &mut out).unwrap();
    }
    (filter, out)
}

#[test]
fn a_valid_authority_is_left_alone_and_the_filter_steps_aside() {
    let input = client_bytes(b"127.0.0.1:2379", 3);
    for piece in [1, 7, 4096] {
        let (filter, out) = filter_in_pieces(&input, piece);
        assert_eq!(out, input, "piece size {piece}");
        assert!(filter.is_passthrough());
        assert!(!filter.is_rewriting());
    }
}

#[test]
fn a_url_authority_is_repaired_in_every_block() {
    let input = client_bytes(b"http://127.0.0.1:2379", 4);
    for piece in [1, 5, 100, 1 << 16] {
        let (filter, out) = filter_in_pieces(&input, piece);
        assert!(filter.is_rewriting());
        let mut decoder = loona_hpack::Decoder::new();
        let mut requests = 0;
        for (header, payload) in frames(&out) {
            match header.kind {
                TYPE_HEADERS => {
                    assert_eq!(header.flags, FLAG_END_HEADERS);
                    let path = format!("/etcdserverpb.KV/Range{requests}");
                    let want = request_fields(b"127.0.0.1:2379", path.as_bytes());
                    assert_eq!(decoder.decode(&payload).unwrap(), want);
                    assert_eq!(header.stream_id, 2 * requests + 1);
                    requests += 1;
                }
                TYPE_DATA => assert_eq!(payload, b"\0\0\0\0\x02\x0a\x00"),
                TYPE_SETTINGS => assert_eq!(payload, [0, 4, 0, 0, 0xff, 0xff]),
                other => panic!("unexpected frame type {other}"),
            }
        }
        assert_eq!(requests, 4, "piece size {piece}");
    }
}

#[test]
fn a_hopeless_authority_is_dropped() {
    let input = client_bytes(b"/var/run/etcd.sock", 1);
    let (_, out) = filter_in_pieces(&input, 64);
    let (_, block) = frames(&out)
        .into_iter()
        .find(|(h, _)| h.kind == TYPE_HEADERS)
        .unwrap();
    let fields = loona_hpack::Decoder::new().decode(&block).unwrap();
    assert!(fields.iter().all(|(name, _)| name != b":authority"));
    assert_eq!(fields.len(), 5);
}

#[test]
fn continuation_frames_are_gathered() {
    let mut encoder = loona_hpack::Encoder::new();
    let fields = request_fields(b"http://h:1", b"/p");
    let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
    let (head, tail) = block.split_at(10);
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, FLAG_END_STREAM, 1, head));
    input.extend(frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, tail));
    let (_, out) = filter_in_pieces(&input, 3);
    let frames = frames(&out);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.flags, FLAG_END_STREAM | FLAG_END_HEADERS);
    let decoded = loona_hpack::Decoder::new().decode(&frames[0].1).unwrap();
    assert_eq!(decoded, request_fields(b"h:1", b"/p"));
}

#[test]
fn other_protocols_pass_through() {
    let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let (filter, out) = filter_in_pieces(input, 4);
    assert_eq!(out, input);
    assert!(filter.is_passthrough());
}

#[test]
fn a_frame_inside_a_header_block_is_malformed() {
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, 0, 1, b"\x82"));
    input.extend(frame(TYPE_DATA, 0, 1, b"x"));
    let mut out = Vec::new();
    let err = InboundFilter::new().push(&input, &mut out);
    assert!(matches!(err, Err(FilterError::Malformed)));
}

#[test]
fn oversized_blocks_and_bad_hpack_are_refused() {
    let mut big = PREFACE.to_vec();
    FrameHeader {
        length: MAX_BLOCK_BYTES + 1,
        kind: TYPE_HEADERS,
        flags: 0,
        stream_id: 1,
    }
    .write(&mut big);
    let err = InboundFilter::new().push(&big, &mut Vec::new());
    assert!(matches!(err, Err(FilterError::TooLarge)));

    // Once rewriting, an undecodable block is an error (index 70 is unset).
    let mut input = client_bytes(b"http://h:1", 1);
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 3, &[0x80 | 70]));
    let err = InboundFilter::new().push(&input, &mut Vec::new());
    assert!(matches!(err, Err(FilterError::Hpack(_))));
}

#[test]
fn finish_passes_on_what_was_held_back() {
    let input = client_bytes(b"http://h:1", 1);
    let cut = PREFACE.len() + 15 + 5; // inside the HEADERS frame
    let mut filter = InboundFilter::new();
    let mut out = Vec::new();
    filter.push(&input[..cut], &mut out).unwrap();
    assert!(out.len() < cut);
    filter.finish(&mut out);
    assert_eq!(out, &input[..cut]);
}
