use portcullis_guard::redact::{find, redact, StreamRedactor, MAX_BLOCK};
fn main() {
    let hex = std::env::args().nth(1).unwrap();
    let bytes: Vec<u8> = hex.split(',').map(|b| b.trim().parse().unwrap()).collect();
    let size = (bytes[0] as usize % 17) + 1;
    let text = std::str::from_utf8(&bytes[1..]).unwrap();
    let mut r = StreamRedactor::new();
    let mut out = String::new();
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let o = r.push(&text[at..end]);
        println!("push {:?} -> {:?} held {}", &text[at..end], o, r.held());
        assert!(r.held() <= MAX_BLOCK + size + 4);
        out.push_str(&o);
        at = end;
    }
    out.push_str(&r.finish());
    let whole = redact(text).0;
    println!(
        "stream={out:?}\nwhole ={whole:?}\nleft={:?}",
        find(&out, None)
    );
}
