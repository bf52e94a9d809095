//! sea-orm entities of the placement tables (see `migration`).

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod provider {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_resource_providers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uuid: String,
        pub name: String,
        pub generation: i64,
        pub parent_provider_id: Option<i64>,
        /// set right after the insert (a root is its own root)
        pub root_provider_id: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod inventory {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_inventories")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub resource_provider_id: i64,
        pub resource_class: String,
        pub total: i64,
        pub reserved: i64,
        pub min_unit: i64,
        pub max_unit: i64,
        pub step_size: i64,
        pub allocation_ratio: f64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod allocation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_allocations")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub resource_provider_id: i64,
        pub consumer_id: String,
        pub resource_class: String,
        pub used: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod consumer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_consumers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub uuid: String,
        pub project_id: String,
        pub user_id: String,
        pub consumer_type: Option<String>,
        pub generation: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod resource_class {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_resource_classes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub name: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod trait_ {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_traits")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod provider_trait {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_provider_traits")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub resource_provider_id: i64,
        #[sea_orm(primary_key, auto_increment = false, column_name = "trait")]
        pub trait_: String,
    }

    no_relations!();
}

pub mod provider_aggregate {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_provider_aggregates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub resource_provider_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub aggregate: String,
    }

    no_relations!();
}

pub mod state {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_state")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub epoch: i64,
        pub names_epoch: i64,
    }

    no_relations!();
}

pub mod change {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placement_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub provider_id: i64,
        pub epoch: i64,
    }

    no_relations!();
}
