//! Chunked framing (RFC 9112 §7.1), followed byte by byte as a response body passes through.

/// Follows chunked framing (RFC 9112 §7.1) over the bytes as they pass.
#[derive(Clone, Copy)]
pub(super) enum Chunk {
    Size { digits: u8, value: u64 },
    Ext { value: u64 },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

impl Chunk {
    /// Before the first chunk's size.
    pub(super) const START: Chunk = Chunk::Size {
        digits: 0,
        value: 0,
    };

    /// Consumes from `data` up to the end of the body; returns how many bytes belong to it,
    /// or `None` when the framing is broken.
    pub(super) fn feed(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            *self = match *self {
                Chunk::Done => return Some(i),
                Chunk::Data(n) => {
                    let take = n.min((data.len() - i) as u64);
                    i += take as usize;
                    *self = if n == take {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(n - take)
                    };
                    continue;
                }
                Chunk::Size { digits, value } => match (b as char).to_digit(16) {
                    Some(d) if digits < 15 => Chunk::Size {
                        digits: digits + 1,
                        value: value * 16 + d as u64,
                    },
                    None if digits > 0 && (b == b';' || b == b' ' || b == b'\t') => {
                        Chunk::Ext { value }
                    }
                    None if digits > 0 && b == b'\r' => Chunk::SizeLf { value },
                    _ => return None,
                },
                Chunk::Ext { value } => match b {
                    b'\r' => Chunk::SizeLf { value },
                    b'\n' => return None,
                    _ => Chunk::Ext { value },
                },
                Chunk::SizeLf { value } => match b {
                    b'\n' if value == 0 => Chunk::TrailerStart,
                    b'\n' => Chunk::Data(value),
                    _ => return None,
                },
                Chunk::DataCr => match b {
                    b'\r' => Chunk::DataLf,
                    _ => return None,
                },
                Chunk::DataLf => match b {
                    b'\n' => Chunk::START,
                    _ => return None,
                },
                Chunk::TrailerStart => match b {
                    b'\r' => Chunk::EndLf,
                    b'\n' => return None,
                    _ => Chunk::TrailerLine,
                },
                Chunk::TrailerLine => match b {
                    b'\r' => Chunk::TrailerLf,
                    b'\n' => return None,
                    _ => Chunk::TrailerLine,
                },
                Chunk::TrailerLf => match b {
                    b'\n' => Chunk::TrailerStart,
                    _ => return None,
                },
                Chunk::EndLf => match b {
                    b'\n' => Chunk::Done,
                    _ => return None,
                },
            };
            i += 1;
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_end(chunks: &[&[u8]]) -> Option<usize> {
        let mut c = Chunk::START;
        let mut total = 0;
        for part in chunks {
            let n = c.feed(part)?;
            total += n;
            if matches!(c, Chunk::Done) {
                return Some(total);
            }
        }
        None
    }

    #[test]
    fn chunked_framing_is_followed_across_reads() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(body_end(&[body]), Some(body.len()));
        for split in 1..body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(body_end(&[a, b]), Some(body.len()), "split at {split}");
        }
        let mut with_next = body.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(body_end(&[&with_next]), Some(body.len()));
        assert_eq!(body_end(&[b"0\r\n\r\n"]), Some(5));
    }

    #[test]
    fn broken_chunked_framing_is_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"5\nhello\r\n",
            b"\r\n",
            b"fffffffffffffffff\r\n",
            b"0\r\n\n",
        ] {
            let mut c = Chunk::START;
            assert!(c.feed(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
