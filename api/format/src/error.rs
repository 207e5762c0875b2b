use thiserror::Error;

/// Everything that can be wrong with a piece of Keep text.
///
/// Messages say which thing, where, and why, so they can be shown to a user as-is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error("invalid block hash {got:?}: {why}")]
    Hash { got: String, why: &'static str },
    #[error("invalid locator {got:?}: {why}")]
    Locator { got: String, why: String },
    #[error("invalid portable data hash {got:?}: {why}")]
    Pdh { got: String, why: String },
    #[error("invalid UUID {got:?}: {why}")]
    Uuid { got: String, why: String },
    #[error("invalid token: {why}")]
    Token { why: &'static str },
    #[error("manifest line {line}, token {token} ({text:?}): {why}")]
    Manifest {
        /// 1-based line number.
        line: usize,
        /// 1-based token number within the line (0 when the whole line is at fault).
        token: usize,
        /// The offending token, shortened to 80 bytes.
        text: String,
        why: String,
    },
    #[error("invalid duration {got:?}: {why}")]
    Duration { got: String, why: String },
    #[error("invalid timestamp {got:?}: {why}")]
    Time { got: String, why: String },
    #[error("invalid path {path:?}: {why}")]
    Path { path: String, why: &'static str },
    /// A WebDAV request body (PROPFIND, PROPPATCH, LOCK) that can't be used.
    #[error("{what} body: {why}")]
    Xml { what: &'static str, why: String },
    /// Input over one of the documented limits (see [`Limit`]); `at` says where.
    #[error("{at}: {limit}")]
    Limit { limit: Limit, at: String },
    /// The normalized text of a manifest does not parse back to the same collection.
    /// Never expected (a bug in keep-format): the caller must store nothing.
    #[error("the normalized manifest does not parse back to the same collection ({why}); nothing was stored")]
    RoundTrip { why: String },
}

/// Every limit keep-format enforces on input, with its value: the one table that
/// `doc/formats.md` documents. Servers answer an [`Error::Limit`] with a 4xx (413 for
/// the sizes, 422 or 400 for the shapes) whose message names the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Bytes of manifest text ([`crate::manifest::TEXT_MAX`]).
    ManifestText,
    /// Lines (streams) of one manifest ([`crate::manifest::STREAMS_MAX`]).
    ManifestStreams,
    /// Files of one manifest ([`crate::manifest::FILES_MAX`]).
    ManifestFiles,
    /// Block runs of all files of one manifest ([`crate::manifest::SEGMENTS_MAX`]).
    ManifestSegments,
    /// Bytes of every file token's full path, added up ([`crate::manifest::PATH_BYTES_MAX`]).
    ManifestPathBytes,
    /// Directory levels of one path ([`crate::manifest::PATH_DEPTH_MAX`]).
    PathDepth,
    /// Bytes of one path ([`crate::manifest::PATH_LEN_MAX`]).
    PathLength,
    /// Bytes of one file or directory name ([`crate::manifest::NAME_MAX`]).
    NameLength,
    /// Bytes of one block ([`crate::BLOCK_SIZE_MAX`]).
    BlockSize,
    /// Bytes of a WebDAV request body ([`crate::dav::BODY_MAX`]).
    XmlBody,
    /// Element nesting of a WebDAV body ([`crate::dav::DEPTH_MAX`]).
    XmlDepth,
    /// Elements of a WebDAV body ([`crate::dav::ELEMENTS_MAX`]).
    XmlElements,
    /// Properties named in one body ([`crate::dav::PROPS_MAX`]).
    XmlProperties,
    /// Bytes of one property value ([`crate::dav::VALUE_MAX`]).
    XmlValue,
    /// Namespace declarations in one body ([`crate::dav::NAMESPACES_MAX`]).
    XmlNamespaces,
    /// Bytes of names, values and namespace bindings one body's result holds
    /// ([`crate::dav::RESULT_MAX`]).
    XmlResult,
}

impl Limit {
    /// Every limit, in the order of the table in `doc/formats.md`.
    pub const ALL: [Limit; 16] = [
        Limit::ManifestText,
        Limit::ManifestStreams,
        Limit::ManifestFiles,
        Limit::ManifestSegments,
        Limit::ManifestPathBytes,
        Limit::PathDepth,
        Limit::PathLength,
        Limit::NameLength,
        Limit::BlockSize,
        Limit::XmlBody,
        Limit::XmlDepth,
        Limit::XmlElements,
        Limit::XmlProperties,
        Limit::XmlValue,
        Limit::XmlNamespaces,
        Limit::XmlResult,
    ];

    /// The limit's value.
    pub fn max(self) -> u64 {
        use crate::{dav, manifest};
        (match self {
            Limit::ManifestText => manifest::TEXT_MAX,
            Limit::ManifestStreams => manifest::STREAMS_MAX,
            Limit::ManifestFiles => manifest::FILES_MAX,
            Limit::ManifestSegments => manifest::SEGMENTS_MAX,
            Limit::ManifestPathBytes => manifest::PATH_BYTES_MAX,
            Limit::PathDepth => manifest::PATH_DEPTH_MAX,
            Limit::PathLength => manifest::PATH_LEN_MAX,
            Limit::NameLength => manifest::NAME_MAX,
            Limit::BlockSize => crate::BLOCK_SIZE_MAX as usize,
            Limit::XmlBody => dav::BODY_MAX,
            Limit::XmlDepth => dav::DEPTH_MAX,
            Limit::XmlElements => dav::ELEMENTS_MAX,
            Limit::XmlProperties => dav::PROPS_MAX,
            Limit::XmlValue => dav::VALUE_MAX,
            Limit::XmlNamespaces => dav::NAMESPACES_MAX,
            Limit::XmlResult => dav::RESULT_MAX,
        }) as u64
    }

    /// What is limited, in words.
    pub fn name(self) -> &'static str {
        match self {
            Limit::ManifestText => "manifest size",
            Limit::ManifestStreams => "number of streams (lines) in a manifest",
            Limit::ManifestFiles => "number of files in a manifest",
            Limit::ManifestSegments => "number of file segments (block runs) in a manifest",
            Limit::ManifestPathBytes => "total length of the paths of a manifest's file tokens",
            Limit::PathDepth => "path depth",
            Limit::PathLength => "path length",
            Limit::NameLength => "name length",
            Limit::BlockSize => "block size",
            Limit::XmlBody => "WebDAV request body size",
            Limit::XmlDepth => "XML element depth",
            Limit::XmlElements => "number of XML elements in a body",
            Limit::XmlProperties => "number of properties in a body",
            Limit::XmlValue => "property value size",
            Limit::XmlNamespaces => "number of namespace declarations in a body",
            Limit::XmlResult => {
                "size of the names, values and namespace bindings a body asks to store"
            }
        }
    }

    /// The unit of [`Limit::max`].
    pub fn unit(self) -> &'static str {
        match self {
            Limit::ManifestText
            | Limit::ManifestPathBytes
            | Limit::PathLength
            | Limit::NameLength
            | Limit::BlockSize
            | Limit::XmlBody
            | Limit::XmlValue
            | Limit::XmlResult => "bytes",
            Limit::ManifestStreams => "streams",
            Limit::ManifestFiles => "files",
            Limit::ManifestSegments => "segments",
            Limit::PathDepth | Limit::XmlDepth => "levels",
            Limit::XmlElements => "elements",
            Limit::XmlProperties => "properties",
            Limit::XmlNamespaces => "declarations",
        }
    }

    /// Whether the limit is on a size (an HTTP server answers 413) rather than on a
    /// shape (400/422).
    pub fn is_size(self) -> bool {
        matches!(
            self,
            Limit::ManifestText | Limit::XmlBody | Limit::ManifestPathBytes
        )
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "over the limit on the {} ({} {})",
            self.name(),
            self.max(),
            self.unit()
        )
    }
}

impl Error {
    pub(crate) fn limit(limit: Limit, at: impl Into<String>) -> Self {
        Error::Limit {
            limit,
            at: at.into(),
        }
    }

    /// The limit this error is about, if it is one.
    pub fn limit_exceeded(&self) -> Option<Limit> {
        match self {
            Error::Limit { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    pub(crate) fn manifest(line: usize, token: usize, text: &str, why: impl Into<String>) -> Self {
        let mut text = text.to_string();
        if text.len() > 80 {
            let mut cut = 77;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        Error::Manifest {
            line,
            token,
            text,
            why: why.into(),
        }
    }
}
