//! Persistence of the metadefs API: namespaces and what they hold (objects,
//! properties, tags, resource type associations), and the resource types.
//!
//! Lookups take a namespace's row (found by name); the rows it holds are keyed
//! by its internal id, so renaming a namespace moves nothing. Duplicate names
//! are refused by unique keys and come back as 409 faults in Glance's words.
//! Property definitions and object property maps are JSON text.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use stratus_db::Db;

use crate::error::{ImageError, Result, conflict};

pub mod namespace {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "metadef_namespaces")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// the name clients address it by (unique)
        pub namespace: String,
        pub display_name: Option<String>,
        pub description: Option<String>,
        /// public or private
        pub visibility: String,
        pub protected: bool,
        pub owner: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod object {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "metadef_objects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub namespace_id: String,
        pub name: String,
        pub description: Option<String>,
        /// a JSON array of property names
        pub required: Option<String>,
        /// the object's properties: a JSON object of property definitions
        pub json_schema: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod property {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "metadef_properties")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub namespace_id: String,
        pub name: String,
        /// the property definition: a JSON object
        pub json_schema: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "metadef_tags")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub namespace_id: String,
        pub name: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod resource_type {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "metadef_resource_types")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// seeded system types
        pub protected: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod association {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "metadef_namespace_resource_types")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub namespace_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub resource_type: String,
        pub prefix: Option<String>,
        pub properties_target: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Namespace = namespace::Model;
pub type Object = object::Model;
pub type Property = property::Model;
pub type Tag = tag::Model;
pub type ResourceType = resource_type::Model;
pub type Association = association::Model;

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn duplicate_object(name: &str, ns: &str) -> ImageError {
    conflict(format!("A metadata definition object with name={name} already exists in namespace={ns}."))
}

fn duplicate_property(name: &str, ns: &str) -> ImageError {
    conflict(format!("A metadata definition property with name={name} already exists in namespace={ns}."))
}

fn duplicate_tag(name: &str, ns: &str) -> ImageError {
    conflict(format!("A metadata tag with name={name} already exists in namespace={ns}."))
}

fn duplicate_association(rt: &str, ns: &str) -> ImageError {
    conflict(format!(
        "The metadata definition resource-type association of resource-type={rt} to namespace={ns} already exists."
    ))
}

/// Map a unique violation to `dup`, anything else to a database error.
fn or_dup(e: sea_orm::DbErr, dup: impl FnOnce() -> ImageError) -> ImageError {
    if stratus_db::is_unique_violation(&e) { dup() } else { e.into() }
}

// ---- namespaces -------------------------------------------------------------

pub async fn get_namespace(db: &Db, name: &str) -> Result<Option<Namespace>> {
    Ok(namespace::Entity::find().filter(namespace::Column::Namespace.eq(name)).one(&db.read).await?)
}

/// Which namespaces to list.
#[derive(Default, Debug)]
pub struct NamespaceFilter {
    /// Only public namespaces and those of this project (None: every namespace).
    pub visible_to: Option<String>,
    pub visibility: Option<String>,
    /// Only namespaces associated with one of these resource types.
    pub resource_types: Option<Vec<String>>,
}

/// The namespaces the filter selects, unsorted.
pub async fn list_namespaces(db: &Db, f: &NamespaceFilter) -> Result<Vec<Namespace>> {
    let mut cond = Condition::all();
    if let Some(p) = &f.visible_to {
        cond = cond.add(
            Condition::any()
                .add(namespace::Column::Owner.eq(p.clone()))
                .add(namespace::Column::Visibility.eq("public")),
        );
    }
    if let Some(v) = &f.visibility {
        cond = cond.add(namespace::Column::Visibility.eq(v.clone()));
    }
    if let Some(rts) = &f.resource_types {
        let ids: Vec<String> = association::Entity::find()
            .filter(association::Column::ResourceType.is_in(rts.iter().cloned()))
            .all(&db.read)
            .await?
            .into_iter()
            .map(|a| a.namespace_id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        cond = cond.add(namespace::Column::Id.is_in(ids));
    }
    Ok(namespace::Entity::find().filter(cond).all(&db.read).await?)
}

/// A new namespace with the content it is created with.
#[derive(Debug)]
pub struct NewNamespace {
    pub namespace: Namespace,
    pub objects: Vec<Object>,
    pub properties: Vec<Property>,
    pub tags: Vec<Tag>,
    pub associations: Vec<Association>,
}

/// Create a namespace and its content at once: all of it or nothing.
pub async fn create_namespace(db: &Db, new: &NewNamespace) -> Result<()> {
    let ns = &new.namespace;
    for a in &new.associations {
        ensure_resource_type(db, &a.resource_type).await?;
    }
    let txn = db.write.begin().await?;
    let name = ns.namespace.as_str();
    namespace::Entity::insert(namespace::ActiveModel::from(ns.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(|e| or_dup(e, || conflict(format!("The metadata definition namespace={name} already exists."))))?;
    for a in &new.associations {
        association::Entity::insert(association::ActiveModel::from(a.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| or_dup(e, || duplicate_association(&a.resource_type, name)))?;
    }
    for o in &new.objects {
        object::Entity::insert(object::ActiveModel::from(o.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| or_dup(e, || duplicate_object(&o.name, name)))?;
    }
    for t in &new.tags {
        tag::Entity::insert(tag::ActiveModel::from(t.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| or_dup(e, || duplicate_tag(&t.name, name)))?;
    }
    for p in &new.properties {
        property::Entity::insert(property::ActiveModel::from(p.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| or_dup(e, || duplicate_property(&p.name, name)))?;
    }
    txn.commit().await?;
    Ok(())
}

/// Write a namespace's own fields (`updated_at` included); 409 when renamed onto another.
pub async fn update_namespace(db: &Db, ns: &Namespace) -> Result<()> {
    namespace::Entity::update_many()
        .col_expr(namespace::Column::Namespace, Expr::value(ns.namespace.clone()))
        .col_expr(namespace::Column::DisplayName, Expr::value(ns.display_name.clone()))
        .col_expr(namespace::Column::Description, Expr::value(ns.description.clone()))
        .col_expr(namespace::Column::Visibility, Expr::value(ns.visibility.clone()))
        .col_expr(namespace::Column::Protected, Expr::value(ns.protected))
        .col_expr(namespace::Column::Owner, Expr::value(ns.owner.clone()))
        .col_expr(namespace::Column::UpdatedAt, Expr::value(ns.updated_at))
        .filter(namespace::Column::Id.eq(ns.id.clone()))
        .exec(&db.write)
        .await
        .map_err(|e| {
            or_dup(e, || {
                conflict(format!(
                    "Invalid update. It would result in a duplicate metadata definition namespace with the same name of {}",
                    ns.namespace
                ))
            })
        })?;
    Ok(())
}

/// What a namespace holds, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Objects,
    Properties,
    Tags,
    Associations,
}

async fn delete_content<C: ConnectionTrait>(conn: &C, namespace_id: &str, kind: Content) -> Result<u64> {
    let id = namespace_id.to_string();
    let r = match kind {
        Content::Objects => object::Entity::delete_many().filter(object::Column::NamespaceId.eq(id)).exec(conn).await,
        Content::Properties => {
            property::Entity::delete_many().filter(property::Column::NamespaceId.eq(id)).exec(conn).await
        }
        Content::Tags => tag::Entity::delete_many().filter(tag::Column::NamespaceId.eq(id)).exec(conn).await,
        Content::Associations => {
            association::Entity::delete_many().filter(association::Column::NamespaceId.eq(id)).exec(conn).await
        }
    }?;
    Ok(r.rows_affected)
}

/// Delete everything of one kind in a namespace.
pub async fn delete_all(db: &Db, namespace_id: &str, kind: Content) -> Result<u64> {
    delete_content(&db.write, namespace_id, kind).await
}

/// Delete a namespace with all it holds.
pub async fn delete_namespace(db: &Db, namespace_id: &str) -> Result<bool> {
    let txn = db.write.begin().await?;
    for kind in [Content::Tags, Content::Objects, Content::Properties, Content::Associations] {
        delete_content(&txn, namespace_id, kind).await?;
    }
    let r =
        namespace::Entity::delete_many().filter(namespace::Column::Id.eq(namespace_id.to_string())).exec(&txn).await?;
    txn.commit().await?;
    Ok(r.rows_affected > 0)
}

// ---- objects ----------------------------------------------------------------

pub async fn list_objects(db: &Db, namespace_id: &str) -> Result<Vec<Object>> {
    Ok(object::Entity::find()
        .filter(object::Column::NamespaceId.eq(namespace_id))
        .order_by_asc(object::Column::CreatedAt)
        .order_by_asc(object::Column::Name)
        .all(&db.read)
        .await?)
}

pub async fn get_object(db: &Db, namespace_id: &str, name: &str) -> Result<Option<Object>> {
    Ok(object::Entity::find()
        .filter(object::Column::NamespaceId.eq(namespace_id))
        .filter(object::Column::Name.eq(name))
        .one(&db.read)
        .await?)
}

pub async fn insert_object(db: &Db, o: &Object, ns: &str) -> Result<()> {
    object::Entity::insert(object::ActiveModel::from(o.clone()))
        .exec_without_returning(&db.write)
        .await
        .map_err(|e| or_dup(e, || duplicate_object(&o.name, ns)))?;
    Ok(())
}

pub async fn update_object(db: &Db, o: &Object, ns: &str) -> Result<()> {
    object::Entity::update_many()
        .col_expr(object::Column::Name, Expr::value(o.name.clone()))
        .col_expr(object::Column::Description, Expr::value(o.description.clone()))
        .col_expr(object::Column::Required, Expr::value(o.required.clone()))
        .col_expr(object::Column::JsonSchema, Expr::value(o.json_schema.clone()))
        .col_expr(object::Column::UpdatedAt, Expr::value(o.updated_at))
        .filter(object::Column::Id.eq(o.id.clone()))
        .exec(&db.write)
        .await
        .map_err(|e| {
            or_dup(e, || {
                conflict(format!(
                    "Invalid update. It would result in a duplicate metadata definition object with the same name={} in namespace={ns}.",
                    o.name
                ))
            })
        })?;
    Ok(())
}

pub async fn delete_object(db: &Db, id: &str) -> Result<bool> {
    let r = object::Entity::delete_many().filter(object::Column::Id.eq(id)).exec(&db.write).await?;
    Ok(r.rows_affected > 0)
}

// ---- properties -------------------------------------------------------------

pub async fn list_properties(db: &Db, namespace_id: &str) -> Result<Vec<Property>> {
    Ok(property::Entity::find()
        .filter(property::Column::NamespaceId.eq(namespace_id))
        .order_by_asc(property::Column::CreatedAt)
        .order_by_asc(property::Column::Name)
        .all(&db.read)
        .await?)
}

pub async fn get_property(db: &Db, namespace_id: &str, name: &str) -> Result<Option<Property>> {
    Ok(property::Entity::find()
        .filter(property::Column::NamespaceId.eq(namespace_id))
        .filter(property::Column::Name.eq(name))
        .one(&db.read)
        .await?)
}

pub async fn insert_property(db: &Db, p: &Property, ns: &str) -> Result<()> {
    property::Entity::insert(property::ActiveModel::from(p.clone()))
        .exec_without_returning(&db.write)
        .await
        .map_err(|e| or_dup(e, || duplicate_property(&p.name, ns)))?;
    Ok(())
}

pub async fn update_property(db: &Db, p: &Property, ns: &str) -> Result<()> {
    property::Entity::update_many()
        .col_expr(property::Column::Name, Expr::value(p.name.clone()))
        .col_expr(property::Column::JsonSchema, Expr::value(p.json_schema.clone()))
        .col_expr(property::Column::UpdatedAt, Expr::value(p.updated_at))
        .filter(property::Column::Id.eq(p.id.clone()))
        .exec(&db.write)
        .await
        .map_err(|e| {
            or_dup(e, || {
                conflict(format!(
                    "Invalid update. It would result in a duplicate metadata definition property with the same name={} in namespace={ns}.",
                    p.name
                ))
            })
        })?;
    Ok(())
}

pub async fn delete_property(db: &Db, id: &str) -> Result<bool> {
    let r = property::Entity::delete_many().filter(property::Column::Id.eq(id)).exec(&db.write).await?;
    Ok(r.rows_affected > 0)
}

// ---- tags -------------------------------------------------------------------

/// A namespace's tags, unsorted.
pub async fn list_tags(db: &Db, namespace_id: &str) -> Result<Vec<Tag>> {
    Ok(tag::Entity::find().filter(tag::Column::NamespaceId.eq(namespace_id)).all(&db.read).await?)
}

pub async fn get_tag(db: &Db, namespace_id: &str, name: &str) -> Result<Option<Tag>> {
    Ok(tag::Entity::find()
        .filter(tag::Column::NamespaceId.eq(namespace_id))
        .filter(tag::Column::Name.eq(name))
        .one(&db.read)
        .await?)
}

pub async fn insert_tag(db: &Db, t: &Tag, ns: &str) -> Result<()> {
    tag::Entity::insert(tag::ActiveModel::from(t.clone()))
        .exec_without_returning(&db.write)
        .await
        .map_err(|e| or_dup(e, || duplicate_tag(&t.name, ns)))?;
    Ok(())
}

/// Add tags at once, first removing the namespace's other tags unless `append`.
/// All or nothing: a duplicate leaves the tags as they were.
pub async fn add_tags(db: &Db, namespace_id: &str, tags: &[Tag], append: bool, ns: &str) -> Result<()> {
    let txn = db.write.begin().await?;
    if !append {
        delete_content(&txn, namespace_id, Content::Tags).await?;
    }
    for t in tags {
        tag::Entity::insert(tag::ActiveModel::from(t.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| or_dup(e, || duplicate_tag(&t.name, ns)))?;
    }
    txn.commit().await?;
    Ok(())
}

pub async fn update_tag(db: &Db, t: &Tag, ns: &str) -> Result<()> {
    tag::Entity::update_many()
        .col_expr(tag::Column::Name, Expr::value(t.name.clone()))
        .col_expr(tag::Column::UpdatedAt, Expr::value(t.updated_at))
        .filter(tag::Column::Id.eq(t.id.clone()))
        .exec(&db.write)
        .await
        .map_err(|e| or_dup(e, || duplicate_tag(&t.name, ns)))?;
    Ok(())
}

pub async fn delete_tag(db: &Db, id: &str) -> Result<bool> {
    let r = tag::Entity::delete_many().filter(tag::Column::Id.eq(id)).exec(&db.write).await?;
    Ok(r.rows_affected > 0)
}

// ---- resource types ---------------------------------------------------------

/// Every resource type, oldest first.
pub async fn list_resource_types(db: &Db) -> Result<Vec<ResourceType>> {
    Ok(resource_type::Entity::find()
        .order_by_asc(resource_type::Column::CreatedAt)
        .order_by_asc(resource_type::Column::Name)
        .all(&db.read)
        .await?)
}

/// Create a resource type unless it exists (as associating one does).
pub async fn ensure_resource_type(db: &Db, name: &str) -> Result<()> {
    if resource_type::Entity::find_by_id(name.to_string()).one(&db.write).await?.is_some() {
        return Ok(());
    }
    let now = super::now_us();
    let rt = ResourceType { name: name.to_string(), protected: false, created_at: now, updated_at: now };
    match resource_type::Entity::insert(resource_type::ActiveModel::from(rt)).exec_without_returning(&db.write).await {
        Ok(_) => Ok(()),
        // created meanwhile by another request
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The associations of these namespaces, oldest first.
pub async fn associations(db: &Db, namespace_ids: &[String]) -> Result<Vec<Association>> {
    if namespace_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(association::Entity::find()
        .filter(association::Column::NamespaceId.is_in(namespace_ids.iter().cloned()))
        .order_by_asc(association::Column::CreatedAt)
        .order_by_asc(association::Column::ResourceType)
        .all(&db.read)
        .await?)
}

pub async fn get_association(db: &Db, namespace_id: &str, resource_type: &str) -> Result<Option<Association>> {
    Ok(association::Entity::find_by_id((namespace_id.to_string(), resource_type.to_string())).one(&db.read).await?)
}

/// Associate a resource type (created if new) with a namespace.
pub async fn insert_association(db: &Db, a: &Association, ns: &str) -> Result<()> {
    ensure_resource_type(db, &a.resource_type).await?;
    association::Entity::insert(association::ActiveModel::from(a.clone()))
        .exec_without_returning(&db.write)
        .await
        .map_err(|e| or_dup(e, || duplicate_association(&a.resource_type, ns)))?;
    Ok(())
}

pub async fn delete_association(db: &Db, namespace_id: &str, resource_type: &str) -> Result<bool> {
    let r = association::Entity::delete_many()
        .filter(association::Column::NamespaceId.eq(namespace_id))
        .filter(association::Column::ResourceType.eq(resource_type))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}
