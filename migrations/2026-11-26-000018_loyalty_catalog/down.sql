DROP TABLE loyalty_orders;
DROP TABLE loyalty_catalog_items;
