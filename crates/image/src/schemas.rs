//! The JSON schemas served under `/v2/schemas`, and the property lists the
//! image API derives from them.
//!
//! The documents follow Glance's wire contract (`glance/api/v2/images.py`,
//! `image_members.py`, `tasks.py`, `metadef_*.py` and `glance/schema.py`):
//! same names, property types, enums, patterns, `readOnly` flags, `required`
//! lists and links. The image schema includes the optional properties Glance
//! ships in `etc/schema-image.json`, marked `"is_base": false` as Glance marks
//! them.
//!
//! Glance renders schemas in two ways, reproduced here:
//!
//! * "raw" (images, metadefs): `additionalProperties` is present (`false`, or
//!   `{"type": "string"}` for the permissive image schema) and `links` is
//!   included when the schema has links; collections carry `first`/`next`
//!   links and lift the item's `definitions` to the top level.
//! * "minimal" (members, tasks): only `name`, `properties` and `required`;
//!   collections only link `describedby`.

use serde_json::{Map, Value, json};

/// The pattern Glance gives image (and image member, task) ids.
pub const UUID_PATTERN: &str =
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

/// Prefix of the property names Glance reserves for itself: they cannot be set
/// by users ("Attribute 'X' is reserved.").
pub const RESERVED_NAMESPACE: &str = "os_glance";

const DISK_FORMATS: &[&str] = &["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"];

const CONTAINER_FORMATS: &[&str] = &["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];

const IMAGE_STATUSES: &[&str] =
    &["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"];

const IMAGE_VISIBILITIES: &[&str] = &["community", "public", "private", "shared"];

const MEMBER_STATUSES: &[&str] = &["pending", "accepted", "rejected"];

const CORE_PROPERTIES: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "created_at",
    "updated_at",
    "tags",
    "direct_url",
    "min_ram",
    "min_disk",
    "self",
    "file",
    "stores",
    "schema",
    "locations",
];

const READ_ONLY_PROPERTIES: &[&str] = &[
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "os_hash_algo",
    "os_hash_value",
    "stores",
];

const CREATE_DISALLOWED_PROPERTIES: &[&str] = &["direct_url", "self", "file", "schema", "stores"];

const RESERVED_PROPERTIES: &[&str] = &["location", "deleted", "deleted_at"];

const METADEF_KINDS: &[&str] = &[
    "namespace",
    "namespaces",
    "resource_type",
    "resource_types",
    "object",
    "objects",
    "property",
    "properties",
    "tag",
    "tags",
];

/// Glance's default `[image_format] disk_formats`: the values `disk_format`
/// accepts (besides null).
pub fn disk_formats() -> &'static [&'static str] {
    DISK_FORMATS
}

/// Glance's default `[image_format] container_formats`: the values
/// `container_format` accepts (besides null).
pub fn container_formats() -> &'static [&'static str] {
    CONTAINER_FORMATS
}

/// Every image `status` value.
pub fn image_statuses() -> &'static [&'static str] {
    IMAGE_STATUSES
}

/// Every image `visibility` value.
pub fn image_visibilities() -> &'static [&'static str] {
    IMAGE_VISIBILITIES
}

/// Every image member `status` value.
pub fn member_statuses() -> &'static [&'static str] {
    MEMBER_STATUSES
}

/// The image schema's own (base) properties; any other key of an image is a
/// custom property, including the optional ones from `schema-image.json`.
pub fn core_properties() -> &'static [&'static str] {
    CORE_PROPERTIES
}

/// Properties a JSON patch may not touch: Glance answers 403 "Attribute 'X'
/// is read-only." (Glance's `_readonly_properties`, plus `stores`, which the
/// schema marks read-only and creation rejects).
pub fn read_only_properties() -> &'static [&'static str] {
    READ_ONLY_PROPERTIES
}

/// Properties an image-create body may not contain: Glance answers 403
/// "Attribute 'X' is read-only." (Glance's `_disallowed_properties`; the other
/// read-only properties are ignored or validated on create instead).
pub fn create_disallowed_properties() -> &'static [&'static str] {
    CREATE_DISALLOWED_PROPERTIES
}

/// Property names reserved by Glance: setting one (on create or by patch) is
/// answered 403 "Attribute 'X' is reserved.". Names starting with
/// [`RESERVED_NAMESPACE`] are reserved as well; see [`is_reserved`].
pub fn reserved_properties() -> &'static [&'static str] {
    RESERVED_PROPERTIES
}

/// Whether users may not set property `name` because Glance reserves it
/// (one of [`reserved_properties`] or in the `os_glance` namespace).
pub fn is_reserved(name: &str) -> bool {
    RESERVED_PROPERTIES.contains(&name) || name.starts_with(RESERVED_NAMESPACE)
}

/// The metadef schema kinds [`metadef`] knows, i.e. the `{kind}` of
/// `GET /v2/schemas/metadefs/{kind}`.
pub fn metadef_kinds() -> &'static [&'static str] {
    METADEF_KINDS
}

/// `GET /v2/schemas/image`.
pub fn image() -> Value {
    let mut properties = image_base_properties();
    properties.extend(image_optional_properties());
    json!({
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

/// `GET /v2/schemas/images`.
pub fn images() -> Value {
    collection("images", image())
}

/// `GET /v2/schemas/member`.
pub fn member() -> Value {
    json!({
        "name": "member",
        "properties": {
            "member_id": {
                "type": "string",
                "description": "An identifier for the image member (tenantId)",
            },
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": UUID_PATTERN,
            },
            "created_at": {
                "type": "string",
                "description": "Date and time of image member creation",
            },
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": MEMBER_STATUSES,
            },
            "schema": {"readOnly": true, "type": "string"},
        },
    })
}

/// `GET /v2/schemas/members`.
pub fn members() -> Value {
    minimal_collection("members", member())
}

/// `GET /v2/schemas/task`.
pub fn task() -> Value {
    json!({"name": "task", "properties": task_properties(true)})
}

/// `GET /v2/schemas/tasks` (items omit `input`, `result` and `message`, as
/// task listings do).
pub fn tasks() -> Value {
    minimal_collection("tasks", json!({"name": "task", "properties": task_properties(false)}))
}

/// `GET /v2/schemas/metadefs/{kind}` for `kind` one of [`metadef_kinds`];
/// `None` for anything else.
pub fn metadef(kind: &str) -> Option<Value> {
    let schema = match kind {
        "namespace" => metadef_namespace(),
        "namespaces" => collection("namespaces", metadef_namespace()),
        "resource_type" => metadef_resource_type(),
        "resource_types" => collection("resource_type_associations", metadef_resource_type()),
        "object" => metadef_object(),
        "objects" => collection("objects", metadef_object()),
        "property" => metadef_property(&["type", "title", "name"]),
        "properties" => dict_collection("properties", metadef_property(&["type", "title"])),
        "tag" => metadef_tag(),
        "tags" => collection("tags", metadef_tag()),
        _ => return None,
    };
    Some(schema)
}

/// A "raw" object schema: unknown properties are not allowed.
fn strict_schema(name: &str, properties: Value, required: &[&str], definitions: Option<Value>) -> Value {
    let mut schema = json!({
        "name": name,
        "properties": properties,
        "additionalProperties": false,
    });
    if let Some(definitions) = definitions {
        schema["definitions"] = definitions;
    }
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn collection_links() -> Value {
    json!([
        {"rel": "first", "href": "{first}"},
        {"rel": "next", "href": "{next}"},
        {"rel": "describedby", "href": "{schema}"},
    ])
}

/// Moves the item schema's `definitions` up to the collection, where the
/// items' `#/definitions/...` references resolve.
fn lift_definitions(collection: &mut Value, item: &mut Value) {
    if let Some(definitions) = item.as_object_mut().and_then(|item| item.remove("definitions")) {
        collection["definitions"] = definitions;
    }
}

/// A "raw" collection: a paginated array of `item`.
fn collection(name: &str, mut item: Value) -> Value {
    let mut schema = json!({"name": name, "links": collection_links()});
    lift_definitions(&mut schema, &mut item);
    schema["properties"] = json!({
        name: {"type": "array", "items": item},
        "first": {"type": "string"},
        "next": {"type": "string"},
        "schema": {"type": "string"},
    });
    schema
}

/// A "raw" collection keyed by name: an object whose values are `item`.
fn dict_collection(name: &str, mut item: Value) -> Value {
    let mut schema = json!({"name": name, "links": collection_links()});
    lift_definitions(&mut schema, &mut item);
    schema["properties"] = json!({
        name: {"type": "object", "additionalProperties": item},
        "first": {"type": "string"},
        "next": {"type": "string"},
        "schema": {"type": "string"},
    });
    schema
}

/// A "minimal" collection: the array of `item` and the schema link only.
fn minimal_collection(name: &str, item: Value) -> Value {
    json!({
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    })
}

/// `[null, values...]`: the enum of a nullable string property.
fn nullable_enum(values: &[&str]) -> Value {
    std::iter::once(Value::Null).chain(values.iter().map(|value| json!(value))).collect()
}

fn properties<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries.into_iter().map(|(name, schema)| (name.to_owned(), schema)).collect()
}

fn image_base_properties() -> Map<String, Value> {
    properties([
        (
            "id",
            json!({
                "type": "string",
                "description": "An identifier for the image",
                "pattern": UUID_PATTERN,
            }),
        ),
        (
            "name",
            json!({
                "type": ["null", "string"],
                "description": "Descriptive name for the image",
                "maxLength": 255,
            }),
        ),
        (
            "status",
            json!({
                "type": "string",
                "readOnly": true,
                "description": "Status of the image",
                "enum": IMAGE_STATUSES,
            }),
        ),
        (
            "visibility",
            json!({
                "type": "string",
                "description": "Scope of image accessibility",
                "enum": IMAGE_VISIBILITIES,
            }),
        ),
        (
            "protected",
            json!({
                "type": "boolean",
                "description": "If true, image will not be deletable.",
            }),
        ),
        (
            "os_hidden",
            json!({
                "type": "boolean",
                "description": "If true, image will not appear in default image list response.",
            }),
        ),
        (
            "checksum",
            json!({
                "type": ["null", "string"],
                "readOnly": true,
                "description": "md5 hash of image contents.",
                "maxLength": 32,
            }),
        ),
        (
            "os_hash_algo",
            json!({
                "type": ["null", "string"],
                "readOnly": true,
                "description": "Algorithm to calculate the os_hash_value",
                "maxLength": 64,
            }),
        ),
        (
            "os_hash_value",
            json!({
                "type": ["null", "string"],
                "readOnly": true,
                "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
                "maxLength": 128,
            }),
        ),
        (
            "owner",
            json!({
                "type": ["null", "string"],
                "description": "Owner of the image",
                "maxLength": 255,
            }),
        ),
        (
            "size",
            json!({
                "type": ["null", "integer"],
                "readOnly": true,
                "description": "Size of image file in bytes",
            }),
        ),
        (
            "virtual_size",
            json!({
                "type": ["null", "integer"],
                "readOnly": true,
                "description": "Virtual size of image in bytes",
            }),
        ),
        (
            "container_format",
            json!({
                "type": ["null", "string"],
                "description": "Format of the container",
                "enum": nullable_enum(CONTAINER_FORMATS),
            }),
        ),
        (
            "disk_format",
            json!({
                "type": ["null", "string"],
                "description": "Format of the disk",
                "enum": nullable_enum(DISK_FORMATS),
            }),
        ),
        (
            "created_at",
            json!({
                "type": "string",
                "readOnly": true,
                "description": "Date and time of image registration",
            }),
        ),
        (
            "updated_at",
            json!({
                "type": "string",
                "readOnly": true,
                "description": "Date and time of the last image modification",
            }),
        ),
        (
            "tags",
            json!({
                "type": "array",
                "description": "List of strings related to the image",
                "items": {"type": "string", "maxLength": 255},
            }),
        ),
        (
            "direct_url",
            json!({
                "type": "string",
                "readOnly": true,
                "description": "URL to access the image file kept in external store",
            }),
        ),
        (
            "min_ram",
            json!({
                "type": "integer",
                "description": "Amount of ram (in MB) required to boot image.",
            }),
        ),
        (
            "min_disk",
            json!({
                "type": "integer",
                "description": "Amount of disk space (in GB) required to boot image.",
            }),
        ),
        (
            "self",
            json!({
                "type": "string",
                "readOnly": true,
                "description": "An image self url",
            }),
        ),
        (
            "file",
            json!({
                "type": "string",
                "readOnly": true,
                "description": "An image file url",
            }),
        ),
        (
            "stores",
            json!({
                "type": "string",
                "readOnly": true,
                "description": concat!(
                    "Store in which image data resides.  Only present when the operator has enabled multiple stores.",
                    "  May be a comma-separated list of store identifiers.",
                ),
            }),
        ),
        (
            "schema",
            json!({
                "type": "string",
                "readOnly": true,
                "description": "An image schema url",
            }),
        ),
        (
            "locations",
            json!({
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "url": {"type": "string", "maxLength": 255},
                        "metadata": {"type": "object"},
                        "validation_data": {
                            "description": concat!(
                                "Values to be used to populate the corresponding image properties.",
                                " If the image status is not 'queued', values must exactly match those",
                                " already contained in the image properties.",
                            ),
                            "type": "object",
                            "writeOnly": true,
                            "additionalProperties": false,
                            "properties": {
                                "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                                "os_hash_algo": {"type": "string", "maxLength": 64},
                                "os_hash_value": {"type": "string", "maxLength": 128},
                            },
                            "required": ["os_hash_algo", "os_hash_value"],
                        },
                    },
                    "required": ["url", "metadata"],
                },
                "description": "A set of URLs to access the image file kept in external store",
            }),
        ),
    ])
}

/// The properties of Glance's stock `etc/schema-image.json`, which Glance
/// merges into the image schema as custom (`"is_base": false`) properties.
fn image_optional_properties() -> Map<String, Value> {
    properties([
        (
            "kernel_id",
            json!({
                "type": ["null", "string"],
                "pattern": UUID_PATTERN,
                "description": concat!(
                    "ID of image stored in Glance that should be used as the kernel",
                    " when booting an AMI-style image.",
                ),
                "is_base": false,
            }),
        ),
        (
            "ramdisk_id",
            json!({
                "type": ["null", "string"],
                "pattern": UUID_PATTERN,
                "description": concat!(
                    "ID of image stored in Glance that should be used as the ramdisk",
                    " when booting an AMI-style image.",
                ),
                "is_base": false,
            }),
        ),
        (
            "instance_uuid",
            json!({
                "type": "string",
                "description": concat!(
                    "Metadata which can be used to record which instance this image is associated with.",
                    " (Informational only, does not create an instance snapshot.)",
                ),
                "is_base": false,
            }),
        ),
        (
            "architecture",
            json!({
                "description": concat!(
                    "Operating system architecture as specified in",
                    " https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
                ),
                "type": "string",
                "is_base": false,
            }),
        ),
        (
            "os_distro",
            json!({
                "description": concat!(
                    "Common name of operating system distribution as specified in",
                    " https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
                ),
                "type": "string",
                "is_base": false,
            }),
        ),
        (
            "os_version",
            json!({
                "description": "Operating system version as specified by the distributor.",
                "type": "string",
                "is_base": false,
            }),
        ),
        (
            "description",
            json!({
                "description": "A human-readable string describing this image.",
                "type": "string",
                "is_base": false,
            }),
        ),
        (
            "cinder_encryption_key_id",
            json!({
                "description": concat!(
                    "Identifier in the OpenStack Key Management Service for the encryption key",
                    " for the Block Storage Service to use when mounting a volume created from this image",
                ),
                "type": "string",
                "is_base": false,
            }),
        ),
        (
            "cinder_encryption_key_deletion_policy",
            json!({
                "description": concat!(
                    "States the condition under which the Image Service will delete the object associated",
                    " with the 'cinder_encryption_key_id' image property.",
                    "  If this property is missing, the Image Service will take no action",
                ),
                "type": "string",
                "enum": ["on_image_deletion", "do_not_delete"],
                "is_base": false,
            }),
        ),
    ])
}

fn task_properties(full: bool) -> Value {
    let mut properties = json!({
        "id": {
            "description": "An identifier for the task",
            "pattern": UUID_PATTERN,
            "type": "string",
        },
        "type": {
            "description": "The type of task represented by this content",
            "enum": ["import", "api_image_import", "location_import"],
            "type": "string",
        },
        "status": {
            "description": "The current status of this task",
            "enum": ["pending", "processing", "success", "failure"],
            "type": "string",
        },
        "owner": {"description": "An identifier for the owner of this task", "type": "string"},
        "image_id": {"description": "Image associated with the task", "type": "string"},
        "request_id": {"description": "Human-readable informative request-id", "type": "string"},
        "user_id": {"description": "User associated with the task", "type": "string"},
        "expires_at": {
            "description": "Datetime when this resource would be subject to removal",
            "type": ["null", "string"],
        },
        "created_at": {"description": "Datetime when this resource was created", "type": "string"},
        "updated_at": {"description": "Datetime when this resource was updated", "type": "string"},
        "self": {"readOnly": true, "type": "string"},
        "schema": {"readOnly": true, "type": "string"},
    });
    if full {
        properties["input"] =
            json!({"description": "The parameters required by task, JSON blob", "type": ["null", "object"]});
        properties["result"] =
            json!({"description": "The result of current task, JSON blob", "type": ["null", "object"]});
        properties["message"] = json!({
            "description": "Human-readable informative message only included when appropriate (usually on failure)",
            "type": "string",
        });
    }
    properties
}

/// The JSON types a metadef property (or its items) may declare.
fn metadef_property_types() -> Value {
    json!(["array", "boolean", "integer", "number", "object", "string", null])
}

/// The fields of one metadef property definition: a JSON-schema-like subset.
/// References resolve against the `definitions` of the enclosing schema.
fn metadef_property_fields() -> Value {
    json!({
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": metadef_property_types()},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": metadef_property_types()},
                "enum": {"type": "array"},
            },
        },
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": false},
        "additionalItems": {"type": "boolean"},
    })
}

/// Definitions shared by the namespace, object and property schemas.
/// `stringArray` requires at least one item only in the property schema.
fn metadef_definitions(string_array_min_items: bool, with_property: bool) -> Value {
    let mut definitions = json!({
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {
            "allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}],
        },
        "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
    });
    if string_array_min_items {
        definitions["stringArray"]["minItems"] = json!(1);
    }
    if with_property {
        definitions["property"] = json!({
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["title", "type"],
                "properties": metadef_property_fields(),
            },
        });
    }
    definitions
}

fn metadef_namespace() -> Value {
    let properties = json!({
        "namespace": {
            "type": "string",
            "description": "The unique namespace text.",
            "maxLength": 80,
        },
        "display_name": {
            "type": "string",
            "description": "The user friendly name for the namespace. Used by UI if available.",
            "maxLength": 80,
        },
        "description": {
            "type": "string",
            "description": "Provides a user friendly description of the namespace.",
            "maxLength": 500,
        },
        "visibility": {
            "type": "string",
            "description": "Scope of namespace accessibility.",
            "enum": ["public", "private"],
        },
        "protected": {
            "type": "boolean",
            "description": "If true, namespace will not be deletable.",
        },
        "owner": {
            "type": "string",
            "description": "Owner of the namespace.",
            "maxLength": 255,
        },
        "created_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of namespace creation",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of the last namespace modification",
            "format": "date-time",
        },
        "schema": {"readOnly": true, "type": "string"},
        "self": {"readOnly": true, "type": "string"},
        "resource_type_associations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "prefix": {"type": "string"},
                    "properties_target": {"type": "string"},
                },
            },
        },
        "properties": {"$ref": "#/definitions/property"},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "properties": {"$ref": "#/definitions/property"},
                },
            },
        },
        "tags": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    });
    strict_schema("namespace", properties, &["namespace"], Some(metadef_definitions(false, true)))
}

fn metadef_object() -> Value {
    let properties = json!({
        "name": {"type": "string", "maxLength": 80},
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        "schema": {"readOnly": true, "type": "string"},
        "self": {"readOnly": true, "type": "string"},
        "created_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of object creation",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of the last object modification",
            "format": "date-time",
        },
    });
    strict_schema("object", properties, &["name"], Some(metadef_definitions(false, true)))
}

/// One property definition; `name` is required except inside the
/// `properties` collection, where the name is the key.
fn metadef_property(required: &[&str]) -> Value {
    strict_schema("property", metadef_property_fields(), required, Some(metadef_definitions(true, false)))
}

fn metadef_resource_type() -> Value {
    let properties = json!({
        "name": {
            "type": "string",
            "description": concat!(
                "Resource type names should be aligned with Heat resource types whenever possible:",
                " https://docs.openstack.org/heat/latest/template_guide/openstack.html",
            ),
            "maxLength": 80,
        },
        "prefix": {
            "type": "string",
            "description": concat!(
                "Specifies the prefix to use for the given resource type. Any properties in the namespace",
                " should be prefixed with this prefix when being applied to the specified resource type.",
                " Must include prefix separator (e.g. a colon :).",
            ),
            "maxLength": 80,
        },
        "properties_target": {
            "type": "string",
            "description": concat!(
                "Some resource types allow more than one key / value pair per instance.",
                "  For example, Cinder allows user and image metadata on volumes.",
                " Only the image properties metadata is evaluated by Nova (scheduling or drivers).",
                " This property allows a namespace target to remove the ambiguity.",
            ),
            "maxLength": 80,
        },
        "created_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of resource type association",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of the last resource type association modification",
            "format": "date-time",
        },
    });
    strict_schema("resource_type_association", properties, &["name"], None)
}

fn metadef_tag() -> Value {
    let properties = json!({
        "name": {"type": "string", "maxLength": 80},
        "created_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of tag creation",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": true,
            "description": "Date and time of the last tag modification",
            "format": "date-time",
        },
    });
    strict_schema("tag", properties, &["name"], None)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn property_names(schema: &Value) -> Vec<&str> {
        schema["properties"].as_object().unwrap().keys().map(String::as_str).collect()
    }

    /// Every `#/definitions/x` reference in `value` names a definition of `root`.
    fn assert_refs_resolve(root: &Value, value: &Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let name = reference.strip_prefix("#/definitions/").unwrap();
                    assert!(root["definitions"].get(name).is_some(), "dangling {reference} in {}", root["name"]);
                }
                map.values().for_each(|child| assert_refs_resolve(root, child));
            }
            Value::Array(items) => items.iter().for_each(|child| assert_refs_resolve(root, child)),
            _ => {}
        }
    }

    #[test]
    fn image_schema_has_every_core_property() {
        let schema = image();
        assert_eq!(schema["name"], "image");
        assert_eq!(schema["additionalProperties"], serde_json::json!({"type": "string"}));
        assert_eq!(schema["links"].as_array().unwrap().len(), 3);
        for name in core_properties() {
            let property = &schema["properties"][*name];
            assert!(property.is_object(), "missing {name}");
            assert!(property.get("is_base").is_none(), "{name} is core");
        }
        for name in read_only_properties() {
            assert!(core_properties().contains(name), "{name}");
            if *name != "id" {
                assert_eq!(schema["properties"][*name]["readOnly"], true, "{name}");
            }
        }
        let extras: Vec<&str> =
            property_names(&schema).into_iter().filter(|name| !core_properties().contains(name)).collect();
        for name in ["kernel_id", "ramdisk_id", "instance_uuid", "architecture", "os_distro", "os_version"] {
            assert!(extras.contains(&name), "missing {name}");
        }
        for name in extras {
            assert_eq!(schema["properties"][name]["is_base"], false, "{name}");
        }
    }

    #[test]
    fn image_enums() {
        assert!(disk_formats().contains(&"qcow2"));
        assert!(disk_formats().contains(&"raw"));
        assert!(container_formats().contains(&"bare"));
        let schema = image();
        let disk = schema["properties"]["disk_format"]["enum"].as_array().unwrap();
        assert_eq!(disk[0], Value::Null);
        assert_eq!(disk.len(), disk_formats().len() + 1);
        assert_eq!(schema["properties"]["status"]["enum"].as_array().unwrap().len(), 9);
        assert_eq!(schema["properties"]["visibility"]["enum"], serde_json::json!(image_visibilities()));
        assert_eq!(schema["properties"]["id"]["pattern"], UUID_PATTERN);
        assert_eq!(schema["properties"]["name"]["maxLength"], 255);
    }

    #[test]
    fn images_collection() {
        let schema = images();
        assert_eq!(schema["name"], "images");
        assert_eq!(schema["properties"]["images"]["items"], image());
        for name in ["first", "next", "schema"] {
            assert_eq!(schema["properties"][name]["type"], "string");
        }
        assert_eq!(schema["links"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn member_schemas() {
        let schema = member();
        assert_eq!(schema["name"], "member");
        assert_eq!(property_names(&schema).len(), 6);
        assert!(schema.get("additionalProperties").is_none());
        let collection = members();
        assert_eq!(collection["name"], "members");
        assert_eq!(collection["properties"]["members"]["items"], schema);
        assert!(collection["properties"].get("next").is_none());
    }

    #[test]
    fn task_schemas() {
        assert_eq!(task()["name"], "task");
        assert!(task()["properties"]["input"].is_object());
        let collection = tasks();
        assert_eq!(collection["name"], "tasks");
        assert!(collection["properties"]["tasks"]["items"]["properties"].get("input").is_none());
    }

    #[test]
    fn reserved_names() {
        assert!(is_reserved("deleted"));
        assert!(is_reserved("os_glance_import_task"));
        assert!(!is_reserved("os_distro"));
        for name in reserved_properties() {
            assert!(!core_properties().contains(name));
        }
        for name in create_disallowed_properties() {
            assert!(read_only_properties().contains(name));
        }
    }

    /// What Tempest's `test_images_metadefs_schema.py` checks: the `name` of
    /// each metadef schema.
    #[test]
    fn metadef_schema_names() {
        for (kind, name) in [
            ("namespace", "namespace"),
            ("namespaces", "namespaces"),
            ("resource_type", "resource_type_association"),
            ("resource_types", "resource_type_associations"),
            ("object", "object"),
            ("objects", "objects"),
            ("property", "property"),
            ("properties", "properties"),
            ("tag", "tag"),
            ("tags", "tags"),
        ] {
            let schema = metadef(kind).unwrap();
            assert_eq!(schema["name"], name, "{kind}");
        }
        assert_eq!(metadef_kinds().len(), 10);
        assert!(metadef("bogus").is_none());
    }

    #[test]
    fn metadef_schema_contents() {
        let namespace = metadef("namespace").unwrap();
        for name in ["namespace", "display_name", "description", "visibility", "protected", "owner"] {
            assert!(namespace["properties"][name].is_object(), "{name}");
        }
        assert_eq!(namespace["required"], serde_json::json!(["namespace"]));
        assert_eq!(namespace["additionalProperties"], false);

        let property = metadef("property").unwrap();
        assert_eq!(property["required"], serde_json::json!(["type", "title", "name"]));
        let properties = metadef("properties").unwrap();
        assert_eq!(
            properties["properties"]["properties"]["additionalProperties"]["required"],
            serde_json::json!(["type", "title"])
        );

        for kind in metadef_kinds() {
            let schema = metadef(kind).unwrap();
            assert_refs_resolve(&schema, &schema);
            for (name, item) in schema["properties"].as_object().unwrap() {
                let item = item.get("items").or_else(|| item.get("additionalProperties"));
                if let Some(item) = item.filter(|_| name.as_str() == schema["name"]) {
                    assert!(item.get("definitions").is_none(), "{kind}: definitions not lifted");
                }
            }
        }
        let tags = metadef("tags").unwrap();
        assert!(tags.get("definitions").is_none());
        assert_eq!(tags["properties"]["tags"]["items"], metadef("tag").unwrap());
    }
}
