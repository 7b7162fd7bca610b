//! The requested paths as a tree of field names, checked for shape before any schema is
//! looked at.

use crate::error::PathError;

/// The requested paths as a tree of field names.
#[derive(Debug, Default)]
pub(super) struct PathTree {
    /// The dotted prefix that leads here (`user.id`), for messages.
    pub(super) prefix: String,
    /// Index of the first requested path at or below this node, for messages.
    pub(super) first: usize,
    /// Slots of the paths that end here (several when a path is listed twice).
    pub(super) slots: Vec<u32>,
    pub(super) children: Vec<(String, PathTree)>,
}

impl PathTree {
    pub(super) fn child(&self, name: &str) -> Option<&PathTree> {
        self.children.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub(super) fn parse(paths: &[String], schema_id: Option<u32>) -> Result<PathTree, PathError> {
        let mut root = PathTree::default();
        for (i, path) in paths.iter().enumerate() {
            let err = |message: String| PathError::Path { path: path.clone(), schema_id, message };
            let slot = u32::try_from(i).map_err(|_| err("too many paths".into()))?;
            let mut node = &mut root;
            for segment in path.split('.') {
                if !is_avro_name(segment) {
                    return Err(err(if segment.is_empty() {
                        "empty segment: a path is field names joined by single dots".into()
                    } else {
                        format!("segment {segment:?} is not an avro field name ([A-Za-z_][A-Za-z0-9_]*)")
                    }));
                }
                let at = match node.children.iter().position(|(n, _)| n == segment) {
                    Some(at) => at,
                    None => {
                        let prefix = if node.prefix.is_empty() {
                            segment.to_string()
                        } else {
                            format!("{}.{segment}", node.prefix)
                        };
                        node.children.push((segment.to_string(), PathTree { prefix, first: i, ..PathTree::default() }));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[at].1;
            }
            node.slots.push(slot);
        }
        root.check_prefixes(paths, schema_id)?;
        Ok(root)
    }

    /// `user` and `user.id` cannot both be values, whatever the writer schema.
    fn check_prefixes(&self, paths: &[String], schema_id: Option<u32>) -> Result<(), PathError> {
        for (_, child) in &self.children {
            if !child.slots.is_empty() && !child.children.is_empty() {
                let deeper = child.children.first().map(|(_, t)| t.first).unwrap_or(child.first);
                return Err(PathError::Path {
                    path: child.prefix.clone(),
                    schema_id,
                    message: format!(
                        "is also a prefix of {:?}: a path names either a value or a record, not both",
                        paths.get(deeper).map(String::as_str).unwrap_or_default()
                    ),
                });
            }
            child.check_prefixes(paths, schema_id)?;
        }
        Ok(())
    }
}

fn is_avro_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `(from, to)` slot pairs: a path listed twice is read once and copied.
pub(super) fn collect_copies(tree: &PathTree, out: &mut Vec<(u32, u32)>) {
    if let Some((&first, rest)) = tree.slots.split_first() {
        out.extend(rest.iter().map(|&s| (first, s)));
    }
    for (_, child) in &tree.children {
        collect_copies(child, out);
    }
}
