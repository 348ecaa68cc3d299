//! A small reader of Graphviz DOT, enough for what `podports graph -o dot` writes and any
//! DOT of the same shape: `digraph`, `graph`/`node`/`edge` defaults, `subgraph` blocks,
//! node statements and `a -> b` edges (chains too), attributes as `[k=v, ...]` with IDs,
//! numerals or quoted strings (`\"`, `\\` and `\n` unescaped). It rejects what it cannot read,
//! so a broken quote in the output fails the test instead of being skipped.
#![allow(dead_code)]

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Id(String),
    Str(String),
    Punct(&'static str),
}

pub fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('"') => s.push('"'),
                            Some('\\') => s.push('\\'),
                            Some('n') => s.push('\n'),
                            Some(other) => {
                                // Graphviz keeps other escapes (\l, \N) as they are.
                                s.push('\\');
                                s.push(*other);
                            }
                            None => return Err("unterminated escape".into()),
                        }
                        i += 2;
                    }
                    Some('\n') => return Err("raw newline in a string".into()),
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            toks.push(Tok::Str(s));
        } else if c == '-' && chars.get(i + 1) == Some(&'>') {
            toks.push(Tok::Punct("->"));
            i += 2;
        } else if let Some(p) = ["{", "}", "[", "]", "=", ",", ";"]
            .into_iter()
            .find(|p| p.starts_with(c))
        {
            toks.push(Tok::Punct(p));
            i += 1;
        } else if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            if i == start {
                i += 1;
            }
            toks.push(Tok::Id(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected {c:?} at {i}"));
        }
    }
    Ok(toks)
}

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub attrs: BTreeMap<String, String>,
    /// The subgraph it was declared in, with that subgraph's `label`.
    pub cluster: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub attrs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Dot {
    pub graph: BTreeMap<String, String>,
    pub nodes: BTreeMap<String, Node>,
    pub edges: Vec<Edge>,
}

struct P {
    toks: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Result<Tok, String> {
        let t = self.toks.get(self.i).cloned().ok_or("unexpected end")?;
        self.i += 1;
        Ok(t)
    }
    fn punct(&mut self, p: &str) -> Result<(), String> {
        match self.next()? {
            Tok::Punct(q) if q == p => Ok(()),
            t => Err(format!("expected {p:?}, got {t:?} at token {}", self.i)),
        }
    }
    fn id(&mut self) -> Result<String, String> {
        match self.next()? {
            Tok::Id(s) | Tok::Str(s) => Ok(s),
            t => Err(format!("expected an ID, got {t:?} at token {}", self.i)),
        }
    }
    fn attrs(&mut self) -> Result<BTreeMap<String, String>, String> {
        let mut m = BTreeMap::new();
        while self.peek() == Some(&Tok::Punct("[")) {
            self.punct("[")?;
            while self.peek() != Some(&Tok::Punct("]")) {
                let k = self.id()?;
                self.punct("=")?;
                let v = self.id()?;
                if m.insert(k.clone(), v).is_some() {
                    return Err(format!("attribute {k} given twice"));
                }
                if matches!(self.peek(), Some(Tok::Punct(",")) | Some(Tok::Punct(";"))) {
                    self.i += 1;
                }
            }
            self.punct("]")?;
        }
        Ok(m)
    }
}

pub fn parse(src: &str) -> Result<Dot, String> {
    let mut p = P {
        toks: lex(src)?,
        i: 0,
    };
    let mut dot = Dot::default();
    match p.id()?.as_str() {
        "digraph" => {}
        other => return Err(format!("not a digraph: {other}")),
    }
    if matches!(p.peek(), Some(Tok::Id(_)) | Some(Tok::Str(_))) {
        p.id()?;
    }
    p.punct("{")?;
    // The stack of open subgraphs: (name, label).
    let mut stack: Vec<(String, String)> = Vec::new();
    loop {
        match p.next()? {
            Tok::Punct("}") => {
                if stack.pop().is_none() {
                    break;
                }
            }
            Tok::Punct(";") => {}
            Tok::Id(kw) if kw == "subgraph" => {
                let name = p.id()?;
                p.punct("{")?;
                stack.push((name, String::new()));
            }
            Tok::Id(kw) if kw == "graph" || kw == "node" || kw == "edge" => {
                let a = p.attrs()?;
                if kw == "graph" {
                    match stack.last_mut() {
                        Some(top) => top.1 = a.get("label").cloned().unwrap_or_default(),
                        None => dot.graph.extend(a),
                    }
                }
            }
            Tok::Id(first) | Tok::Str(first) => {
                let mut chain = vec![first];
                while p.peek() == Some(&Tok::Punct("->")) {
                    p.punct("->")?;
                    chain.push(p.id()?);
                }
                if p.peek() == Some(&Tok::Punct("=")) {
                    // `label="x";` inside a subgraph.
                    p.punct("=")?;
                    let v = p.id()?;
                    if let (Some(top), "label") = (stack.last_mut(), chain[0].as_str()) {
                        top.1 = v;
                    }
                    continue;
                }
                let attrs = p.attrs()?;
                if chain.len() == 1 {
                    let n = dot.nodes.entry(chain[0].clone()).or_default();
                    n.attrs.extend(attrs);
                    if n.cluster.is_none() {
                        n.cluster = stack.last().cloned();
                    }
                } else {
                    for w in chain.windows(2) {
                        dot.nodes.entry(w[0].clone()).or_default();
                        dot.nodes.entry(w[1].clone()).or_default();
                        dot.edges.push(Edge {
                            from: w[0].clone(),
                            to: w[1].clone(),
                            attrs: attrs.clone(),
                        });
                    }
                }
            }
            t => return Err(format!("unexpected {t:?} at token {}", p.i)),
        }
    }
    if p.i != p.toks.len() {
        return Err("tokens after the closing brace".into());
    }
    Ok(dot)
}
