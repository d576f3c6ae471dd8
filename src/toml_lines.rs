//! Where a setting is written in a TOML file, for errors that name the
//! file's line: a setting's path looked up in the file's syntax tree, whose
//! keys and tables keep their byte spans (`toml_edit`'s `ImDocument`), so
//! that a key deep inside inline tables (`model = { residual = { blocks =
//! 0 } }`), a table header (`[[variants]]`) and a quoted dotted key of a
//! sweep (`"optimizer.lr" = [...]`) are all found the same way.

use toml_edit::{ImDocument, Item, TableLike};

/// A TOML file's text with its syntax tree.
pub struct TomlLines<'a> {
    text: &'a str,
    /// `None` when the text does not parse (then no line is known).
    doc: Option<ImDocument<&'a str>>,
}

/// The line (1-based) of byte offset `at` in `text` (a parse error's span).
pub fn line_of_offset(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// One step of a setting's path: a key, or an index into a list.
#[derive(Clone, Debug, PartialEq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// The steps of `path`: keys joined by `.`, each optionally followed by
/// `[i]` indices (`variants[1].layers[0].layer`); a segment of digits is
/// an index too (`variants.1.weight_init`, as sweep axes write it), and a
/// `*` (every element) stands for the first.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for segment in path.split('.') {
        let mut parts = segment.split('[');
        let name = parts.next().unwrap_or("");
        match name {
            "" => {}
            "*" => out.push(Step::Index(0)),
            n if n.bytes().all(|b| b.is_ascii_digit()) => out.push(Step::Index(n.parse().unwrap_or(usize::MAX))),
            n => out.push(Step::Key(n)),
        }
        for index in parts {
            let Ok(i) = index.trim_end_matches(']').parse() else { break };
            out.push(Step::Index(i));
        }
    }
    out
}

impl<'a> TomlLines<'a> {
    /// The syntax tree of `text`.
    pub fn new(text: &'a str) -> Self {
        TomlLines { text, doc: ImDocument::parse(text).ok() }
    }

    /// The line (1-based) of the byte offset `at`.
    fn line_at(&self, at: usize) -> usize {
        line_of_offset(self.text, at)
    }

    /// The line where the setting `path` is written (`optimizer.lr`,
    /// `variants[1].weight_init`, `model.hidden[2]`): the line of the
    /// deepest part of the path the file writes (its table's header when
    /// the key itself is left to its default); `None` when the file writes
    /// no part of it.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut node = Node::Item(self.doc.as_ref()?.as_item());
        let mut line = None;
        for step in steps(path) {
            let found = match step {
                Step::Key(key) => node
                    .table_like()
                    .and_then(|t| t.get_key_value(key))
                    .map(|(key, item)| (key.span().or_else(|| item.span()), Node::Item(item))),
                Step::Index(i) => node.index(i),
            };
            let Some((span, next)) = found else { break };
            line = span.map(|s| self.line_at(s.start)).or(line);
            node = next;
        }
        line
    }

    /// Every line, in the file's order, where a key named exactly `key` is
    /// written inside the top-level table `under` (its own keys, its
    /// sub-tables' and its arrays of tables', at any depth).
    pub fn lines_of_key_under(&self, under: &str, key: &str) -> Vec<usize> {
        let Some(root) = self.doc.as_ref().and_then(|d| d.as_table().get(under)) else { return Vec::new() };
        let mut starts = Vec::new();
        collect_key(root, key, &mut starts);
        starts.sort_unstable();
        starts.into_iter().map(|s| self.line_at(s)).collect()
    }
}

/// A place in the syntax tree: an item, a table of an array of tables,
/// or a value inside an array.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d Item),
    Table(&'d toml_edit::Table),
    Value(&'d toml_edit::Value),
}

impl<'d> Node<'d> {
    /// Its keys, where it is a table (written, inline or implicit).
    fn table_like(self) -> Option<&'d dyn TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Table(table) => Some(table),
            Node::Value(value) => value.as_inline_table().map(|t| t as &dyn TableLike),
        }
    }

    /// Its element `i` with that element's span, where it is a list.
    fn index(self, i: usize) -> Option<(Option<std::ops::Range<usize>>, Node<'d>)> {
        let array = match self {
            Node::Item(Item::ArrayOfTables(tables)) => return tables.get(i).map(|t| (t.span(), Node::Table(t))),
            Node::Item(Item::Value(value)) | Node::Value(value) => value.as_array()?,
            _ => return None,
        };
        array.get(i).map(|v| (v.span(), Node::Value(v)))
    }
}

/// Byte offsets of every key named `key` under `item`.
fn collect_key(item: &Item, key: &str, out: &mut Vec<usize>) {
    if let Some(table) = item.as_table_like() {
        collect_in_table(table, key, out);
    }
    if let Some(tables) = item.as_array_of_tables() {
        tables.iter().for_each(|t| collect_in_table(t, key, out));
    }
}

fn collect_in_table(table: &dyn TableLike, key: &str, out: &mut Vec<usize>) {
    for (k, child) in table.iter() {
        if k == key {
            if let Some(span) = table.key(k).and_then(|k| k.span()).or_else(|| child.span()) {
                out.push(span.start);
            }
        }
        collect_key(child, key, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"name = "x"
epochs = 2

[model]
hidden = [
  512,
  256,
]
parametrisation = { name = "mup", base_width = 0 }

[[variants]]
name = "a"
weight_init = { scheme = "normal", std = 0.1 }

[[variants]]
name = "b"
model = { width = 16, residual = { blocks = 0, norm = "layer_norm" } }
optimizer.lr = 0.5

[sweep]
"optimizer.lr" = [0.1, 0.2]
[[sweep.zip]]
"model.depth" = [2, 3]
"optimizer.lr" = [0.3, 0.4]
"#;

    #[test]
    fn a_setting_is_found_by_its_path_however_deep_it_is_written() {
        let lines = TomlLines::new(FILE);
        assert_eq!(lines.line_of("epochs"), Some(2));
        assert_eq!(lines.line_of("model"), Some(4));
        assert_eq!(lines.line_of("model.hidden[1]"), Some(7));
        // Three segments deep inside an inline table (the old line scan missed it).
        assert_eq!(lines.line_of("model.parametrisation.base_width"), Some(9));
        assert_eq!(lines.line_of("variants[1]"), Some(15));
        assert_eq!(lines.line_of("variants[1].model.residual.blocks"), Some(17));
        assert_eq!(lines.line_of("variants.1.optimizer.lr"), Some(18));
        assert_eq!(lines.line_of("variants[0].weight_init"), Some(13));
        // A key left to its default: the line of its table.
        assert_eq!(lines.line_of("variants[0].bias_init"), Some(11));
        assert_eq!(lines.line_of("batch_size"), None);
        assert_eq!(lines.line_of("variants[7].name"), Some(11), "no 8th variant: the list's first header");
    }

    #[test]
    fn a_sweep_key_is_found_wherever_the_sweep_tables_write_it() {
        let lines = TomlLines::new(FILE);
        assert_eq!(lines.lines_of_key_under("sweep", "optimizer.lr"), [21, 24]);
        assert_eq!(lines.lines_of_key_under("sweep", "model.depth"), [23]);
        assert_eq!(lines.lines_of_key_under("sweep", "zip"), [22]);
        assert!(lines.lines_of_key_under("sweep", "epochs").is_empty());
        assert!(TomlLines::new("not [ toml").lines_of_key_under("sweep", "x").is_empty());
    }
}
