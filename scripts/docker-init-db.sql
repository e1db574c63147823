-- The service's ordinary role: owner of its database, CREATEROLE for tenant roles, no superuser.
CREATE ROLE analytics LOGIN CREATEROLE PASSWORD 'analytics';
CREATE DATABASE analytics OWNER analytics;
