--- Every API operation the library covers: the method that calls it, the
-- HTTP operation, the scope it needs, the operationId in the vendor's 2.15
-- OpenAPI document (nil when the operation is newer than 2.15) and where it
-- is known from ("spec" = the 2.15 document, "docs" = the vendor's current
-- reference, "clients" = only seen in real integrations).
-- The README's reference table and `make conformance` are built from this list.
-- @module hypatos.operations

local E = "enrichment."

local ops = {
  { "client:token()", "POST", "/auth/token", "(Basic credentials)", "Authorization_requestAccessToken", "spec" },
  { "users:get(id)", "GET", "/users/{id}", "users.read", nil, "docs" },
  { "users:list(query)", "GET", "/users", "users.read", nil, "docs" },
  { "companies:get(id)", "GET", "/companies/{id}", "companies.read", "Companies_getById", "spec" },
  { "companies:list(query)", "GET", "/companies", "companies.read", "Companies_list", "spec" },
  { "files:upload(opts)", "POST", "/files", "files.write", "Files_uploadFile", "spec" },
  { "files:download(id, opts)", "GET", "/files/{id}", "files.read", "Files_downloadById", "spec" },
  { "documents:get(id)", "GET", "/documents/{id}", "documents.read", "Documents_getById", "spec" },
  { "documents:list(query)", "GET", "/documents", "documents.read", "Documents_getList", "spec" },
  { "documents:states(id)", "GET", "/documents/{id}/states", "documents.read", "Documents_getDocumentStates", "spec" },
  { "documents:process_file(body)", "POST", "/documents/process-file", "documents.write",
    "Documents_processFileIntoDocument", "spec" },
  { "documents:process_file_batch(body)", "POST", "/cases/process-file-batch", "documents.write", nil, "clients" },
  { "documents:transfer(id, body)", "POST", "/documents/{id}/transfer", "documents.write",
    "Documents_updateTransferInformation", "spec" },
  { "documents:set_external_data(id, map)", "POST", "/documents/{id}/external-data", "documents.write",
    "Documents_updateExternalData", "spec" },
  { "documents:set_external_id(id, text)", "POST", "/documents/{id}/external-id", "documents.write",
    "Documents_provideExternalId", "spec" },
  { "documents:set_title(id, text)", "POST", "/documents/{id}/title", "documents.write", "Documents_provideTitle", "spec" },
  { "projects:get(id)", "GET", "/projects/{id}", "projects.read", "Projects_getById", "spec" },
  { "projects:list(query)", "GET", "/projects", "projects.read", "Projects_listForGivenSearchCriteria", "spec" },
  { "projects:create(body)", "POST", "/projects", "projects.write", "Projects_createProject", "spec" },
  { "projects:update(id, changes)", "PATCH", "/projects/{id}", "projects.write", nil, "docs" },
  { "projects:schema(id)", "GET", "/projects/{id}/schema", "projects.read", "Projects_getSchemaByProjectId", "spec" },
  { "emails:content(document_id, opts)", "GET", "/emails/{id}/content", "emails.read",
    "Emails_getMergedContentById", "spec" },
  { "enrichment.invoices:upsert(record)", "POST", "/enrichment/invoices", E .. "write",
    "Enrichment_insertInvoiceIncludingInvoiceLines", "spec" },
  { "enrichment.invoices:patch(external_id, changes)", "PATCH", "/enrichment/invoices/{externalId}", E .. "write", nil, "docs" },
  { "enrichment.invoices:delete(external_id, opts)", "DELETE", "/enrichment/invoices/{externalId}", E .. "delete",
    "Enrichment_markInvoiceDeleted", "spec" },
  { "enrichment.companies:upsert(record)", "POST", "/enrichment/companies", E .. "write", "Enrichment_addCompanyData", "spec" },
  { "enrichment.companies:patch(external_id, changes)", "PATCH", "/enrichment/companies/{externalId}", E .. "write", nil, "docs" },
  { "enrichment.companies:delete(external_id)", "DELETE", "/enrichment/companies/{externalId}", E .. "delete",
    "Enrichment_markCompanyDeleted", "spec" },
  { "enrichment.suppliers:upsert(record)", "POST", "/enrichment/suppliers", E .. "write",
    "Enrichment_insertSupplierIncludingSubsidiaries", "spec" },
  { "enrichment.suppliers:patch(external_id, changes)", "PATCH", "/enrichment/suppliers/{externalId}", E .. "write", nil, "docs" },
  { "enrichment.suppliers:delete(external_id)", "DELETE", "/enrichment/suppliers/{externalId}", E .. "delete",
    "Enrichment_markSupplierDeleted", "spec" },
  { "enrichment.purchase_orders:upsert(record)", "POST", "/enrichment/purchase-orders", E .. "write",
    "Enrichment_insertPurchaseOrder", "spec" },
  { "enrichment.purchase_orders:delete(external_id, opts)", "DELETE", "/enrichment/purchase-orders/{externalId}",
    E .. "delete", "Enrichment_markPurchaseOrderDeleted", "spec" },
  { "enrichment.gl_accounts:upsert(record)", "POST", "/enrichment/gl-accounts", E .. "write", "Enrichment_insertGlAccount", "spec" },
  { "enrichment.gl_accounts:delete(external_id)", "DELETE", "/enrichment/gl-accounts/{externalId}", E .. "delete",
    "Enrichment_markGlAccountDeleted", "spec" },
  { "enrichment.cost_centers:upsert(record)", "POST", "/enrichment/cost-centers", E .. "write",
    "Enrichment_insertCostCenter", "spec" },
  { "enrichment.cost_centers:delete(external_id)", "DELETE", "/enrichment/cost-centers/{externalId}", E .. "delete",
    "Enrichment_markCostCenterDeleted", "spec" },
  { "enrichment.approvers:upsert(record)", "POST", "/enrichment/approvers", E .. "write",
    "Enrichment_insertApproverRecord", "spec" },
  { "enrichment.approvers:delete(external_id)", "DELETE", "/enrichment/approvers/{externalId}", E .. "delete",
    "Enrichment_markApproverDeleted", "spec" },
  { "enrichment.customers:upsert(record)", "POST", "/enrichment/customers", E .. "write", "Enrichment_insertCustomer", "spec" },
  { "enrichment.customers:delete(external_id)", "DELETE", "/enrichment/customers/{externalId}", E .. "delete",
    "Enrichment_markCustomerAsDeleted", "spec" },
  { "enrichment.goods_receipts:upsert(record)", "POST", "/enrichment/goods-receipts", E .. "write", nil, "docs" },
  { "enrichment.goods_receipts:patch(external_id, changes)", "PATCH", "/enrichment/goods-receipts/{externalId}",
    E .. "write", nil, "docs" },
  { "enrichment.goods_receipts:delete(external_id)", "DELETE", "/enrichment/goods-receipts/{externalId}",
    E .. "delete", nil, "docs" },
  { "enrichment.contracts:upsert(record)", "POST", "/enrichment/contracts", E .. "write", nil, "docs" },
  { "enrichment.contracts:patch(external_id, changes)", "PATCH", "/enrichment/contracts/{externalId}", E .. "write", nil, "docs" },
  { "enrichment.contracts:delete(external_id)", "DELETE", "/enrichment/contracts/{externalId}", E .. "delete", nil, "docs" },
  { "enrichment.addresses:upsert(record)", "POST", "/enrichment/addresses", E .. "write", nil, "docs" },
  { "enrichment.addresses:delete(external_id)", "DELETE", "/enrichment/addresses/{externalId}", E .. "delete", nil, "docs" },
  { "enrichment.lookup_tables:insert(table_name, row)", "POST", "/enrichment/lookup-tables/{tableName}", E .. "write",
    nil, "clients" },
  { "enrichment.lookup_tables:delete(table_name, external_id)", "DELETE",
    "/enrichment/lookup-tables/{tableName}/{externalId}", E .. "delete", nil, "clients" },
}

local M = {}
for i, o in ipairs(ops) do
  M[i] = { call = o[1], method = o[2], path = o[3], scope = o[4], operation_id = o[5], source = o[6] }
end

--- The markdown reference table (README): method → HTTP operation → scope.
function M.markdown()
  local out = { "| method | HTTP operation | scope | operationId (2.15) |", "|---|---|---|---|" }
  for _, o in ipairs(M) do
    out[#out + 1] = ("| `%s` | `%s %s` | %s | %s |"):format(o.call, o.method, o.path, o.scope,
      o.operation_id and ("`" .. o.operation_id .. "`") or ("— (" .. o.source .. ")"))
  end
  return table.concat(out, "\n")
end

return M
