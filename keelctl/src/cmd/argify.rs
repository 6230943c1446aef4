//! etcdctl's `argify`: splits a txn request line into arguments the way
//! its regular expression `"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`
//! does (etcdctl/ctlv3/command/util.go), including the single-quote
//! quirk: a single-quoted argument is cut to `[1, number of arguments - 1)`.

use crate::output::go;

/// The arguments of `line`.
///
/// # Errors
/// A double-quoted argument that is not a valid Go string literal, or a
/// single-quoted one that etcdctl's slicing cannot cut (etcdctl panics).
pub fn argify(line: &str) -> Result<Vec<String>, String> {
    let tokens = tokens(line);
    let count = tokens.len();
    tokens
        .into_iter()
        .map(|token| {
            if let Some(inner) = token.strip_prefix('\'') {
                let _ = inner;
                let end = count.saturating_sub(1);
                token
                    .get(1..end)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("cannot cut the single-quoted argument {token}"))
            } else if token.starts_with('"') {
                go::unquote(&token).map(|(text, _)| text)
            } else {
                Ok(token)
            }
        })
        .collect()
}

fn tokens(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            if let Some(end) = double_quoted_end(&chars, i) {
                found.push(chars[i..end].iter().collect());
                i = end;
                continue;
            }
        } else if c == '\'' {
            if let Some(offset) = chars[i + 1..].iter().position(|&d| d == '\'') {
                let end = i + 1 + offset + 1;
                found.push(chars[i..end].iter().collect());
                i = end;
                continue;
            }
        } else if !c.is_whitespace() {
            let end = chars[i..]
                .iter()
                .position(|d| d.is_whitespace())
                .map_or(chars.len(), |n| i + n);
            found.push(chars[i..end].iter().collect());
            i = end;
            continue;
        }
        i += 1;
    }
    found
}

/// The end (exclusive) of `"(?:[^"\\]|\\.)*"` starting at `start`.
fn double_quoted_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Some(i + 1),
            '\\' if i + 1 < chars.len() => i += 2,
            '\\' => return None,
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_etcdctl() {
        assert_eq!(argify("put k v").expect("argify"), ["put", "k", "v"]);
        assert_eq!(
            argify("put k \"a b\"").expect("argify"),
            ["put", "k", "a b"]
        );
        assert_eq!(
            argify("get  k  --prefix").expect("argify"),
            ["get", "k", "--prefix"]
        );
        // etcdctl's slice [1 : len(args)-1]: with three arguments, one character.
        assert_eq!(argify("put k 'value'").expect("argify"), ["put", "k", "v"]);
    }
}
