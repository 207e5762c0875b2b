//! Every limit keep-format enforces on input, in one place: the values (re-exported
//! where they apply: `manifest::TEXT_MAX`, `dav::DEPTH_MAX`, `BLOCK_SIZE_MAX`) and the
//! [`Limit`] an [`crate::Error::Limit`] names. This module depends on nothing else in the
//! crate, so the parsers and the error type can both use it.

// == blocks

/// The largest block Keep stores: 64 MiB.
pub const BLOCK_SIZE_MAX: u64 = 64 << 20;

// == manifests (doc/formats.md gives the reasons)

/// Bytes of manifest text: 128 MiB, Arvados's default request size limit, so no client
/// could send a larger one anyway.
pub const TEXT_MAX: usize = 128 << 20;
/// Lines (streams) of one manifest; the normalized form has one per directory.
pub const STREAMS_MAX: usize = 1_000_000;
/// Files of one manifest: twice the 1,000,000 measured in doc/formats.md (~392 bytes a
/// file parsed and indexed, so at most ~750 MiB).
pub const FILES_MAX: usize = 2_000_000;
/// Segments (runs of one block) of all files of one manifest, counted as the parser
/// cuts file tokens at block boundaries: a token spanning k blocks is k segments, so
/// this bounds the memory a short text can ask for.
pub const SEGMENTS_MAX: usize = 4_000_000;
/// Bytes of the full paths of every file token (and `\056` marker), added up: each
/// file keeps its full path, so this bounds the memory of paths whose directory is long
/// but written once per stream.
pub const PATH_BYTES_MAX: usize = 256 << 20;
/// Directory levels of one path (`a/b/c` is 3).
pub const PATH_DEPTH_MAX: usize = 1_000;
/// Bytes of one path (without `./`): Linux's PATH_MAX, the longest path a program can
/// open by name, so `keep get` can always write what a collection holds.
pub const PATH_LEN_MAX: usize = 4_096;
/// Bytes of one file or directory name (after unescaping): four times Linux's NAME_MAX
/// (255), so a name of 255 UTF-16 units from another system (≤ 765 bytes) fits.
pub const NAME_MAX: usize = 1_024;

// == WebDAV request bodies

/// Request bodies (PROPFIND, PROPPATCH, LOCK) may be at most this long (1 MiB).
pub const BODY_MAX: usize = 1 << 20;
/// Limits on request bodies (PROPFIND, PROPPATCH, LOCK), each refused with an
/// [`crate::Error::Limit`] naming it. Parsing a body costs time and memory linear in its size:
/// no tree is built below the levels the methods read (the root, its children, their
/// children and the properties under `DAV:prop`), and nothing is copied that is not
/// returned.
///
/// Real clients send a few hundred bytes, a handful of properties and namespaces, and
/// nesting below 10; property values that hold XML add a few levels.
pub const DEPTH_MAX: usize = 64;
/// Elements in one body (start or empty tags, at any depth).
pub const ELEMENTS_MAX: usize = 10_000;
/// Properties one PROPFIND asks for or one PROPPATCH sets or removes.
pub const PROPS_MAX: usize = 1_000;
/// Bytes of one property value (its inner XML).
pub const VALUE_MAX: usize = 64 << 10;
/// Namespace declarations (`xmlns`, `xmlns:p`) in one body.
pub const NAMESPACES_MAX: usize = 64;
/// Bytes of what a parsed body holds: property names, values and the namespace bindings
/// each value keeps. Each value keeps a copy of the bindings in scope, so this bound is
/// what keeps the result proportional to the body.
pub const RESULT_MAX: usize = 1 << 20;

/// Every limit keep-format enforces on input, with its value: the one table that
/// `doc/formats.md` documents. Servers answer an [`crate::Error::Limit`] with a 4xx (413 for
/// the sizes, 422 or 400 for the shapes) whose message names the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Bytes of manifest text ([`crate::TEXT_MAX`]).
    ManifestText,
    /// Lines (streams) of one manifest ([`crate::STREAMS_MAX`]).
    ManifestStreams,
    /// Files of one manifest ([`crate::FILES_MAX`]).
    ManifestFiles,
    /// Block runs of all files of one manifest ([`crate::SEGMENTS_MAX`]).
    ManifestSegments,
    /// Bytes of every file token's full path, added up ([`crate::PATH_BYTES_MAX`]).
    ManifestPathBytes,
    /// Directory levels of one path ([`crate::PATH_DEPTH_MAX`]).
    PathDepth,
    /// Bytes of one path ([`crate::PATH_LEN_MAX`]).
    PathLength,
    /// Bytes of one file or directory name ([`crate::NAME_MAX`]).
    NameLength,
    /// Bytes of one block ([`BLOCK_SIZE_MAX`]).
    BlockSize,
    /// Bytes of a WebDAV request body ([`crate::BODY_MAX`]).
    XmlBody,
    /// Element nesting of a WebDAV body ([`crate::DEPTH_MAX`]).
    XmlDepth,
    /// Elements of a WebDAV body ([`crate::ELEMENTS_MAX`]).
    XmlElements,
    /// Properties named in one body ([`crate::PROPS_MAX`]).
    XmlProperties,
    /// Bytes of one property value ([`crate::VALUE_MAX`]).
    XmlValue,
    /// Namespace declarations in one body ([`crate::NAMESPACES_MAX`]).
    XmlNamespaces,
    /// Bytes of names, values and namespace bindings one body's result holds
    /// ([`crate::RESULT_MAX`]).
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
        (match self {
            Limit::ManifestText => TEXT_MAX,
            Limit::ManifestStreams => STREAMS_MAX,
            Limit::ManifestFiles => FILES_MAX,
            Limit::ManifestSegments => SEGMENTS_MAX,
            Limit::ManifestPathBytes => PATH_BYTES_MAX,
            Limit::PathDepth => PATH_DEPTH_MAX,
            Limit::PathLength => PATH_LEN_MAX,
            Limit::NameLength => NAME_MAX,
            Limit::BlockSize => BLOCK_SIZE_MAX as usize,
            Limit::XmlBody => BODY_MAX,
            Limit::XmlDepth => DEPTH_MAX,
            Limit::XmlElements => ELEMENTS_MAX,
            Limit::XmlProperties => PROPS_MAX,
            Limit::XmlValue => VALUE_MAX,
            Limit::XmlNamespaces => NAMESPACES_MAX,
            Limit::XmlResult => RESULT_MAX,
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
