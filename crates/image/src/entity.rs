//! sea-orm entities of the image service's tables.

pub mod image {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "images")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: Option<String>,
        pub status: String,
        pub visibility: String,
        pub protected: bool,
        pub os_hidden: bool,
        pub owner: Option<String>,
        pub checksum: Option<String>,
        pub os_hash_algo: Option<String>,
        pub os_hash_value: Option<String>,
        pub size: Option<i64>,
        pub virtual_size: Option<i64>,
        pub disk_format: Option<String>,
        pub container_format: Option<String>,
        pub min_disk: i64,
        pub min_ram: i64,
        /// custom properties: a JSON object of strings
        pub properties: String,
        /// a JSON array of `{"url", "metadata", "store"}`
        pub locations: String,
        /// where staged data waits for import
        pub staging: Option<String>,
        pub deleted: bool,
        pub created_at: i64,
        pub updated_at: i64,
        pub deleted_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod image_tag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_tags")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub image_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tag: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod image_member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub image_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub member: String,
        pub status: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
