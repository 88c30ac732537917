// The registry's database, behind one small interface with two implementations: SQLite, the
// embedded default ("sqlite:PATH"), and PostgreSQL ("postgresql://…"). SQL is written once, in the
// subset both accept (TEXT and BIGINT columns, $1… parameters), and the schema is a list of
// numbered migrations applied in order, each in its own transaction.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tracecast::registry::detail {

using Row = std::vector<std::optional<std::string>>;  //!< NULL is nullopt; every value as text

class Store {
 public:
  virtual ~Store() = default;
  //! Runs one statement with text parameters $1, $2, …; returns its rows. ProcessingError on a
  //! database failure, naming the statement's first words and the database's message.
  std::vector<Row> query(const std::string& sql, const std::vector<std::string>& params = {}) { return run(sql, params); }
  //! Runs `fn` in one transaction: committed when it returns, rolled back when it throws.
  void transaction(const std::function<void()>& fn);
  virtual std::string kind() const = 0;  //!< "sqlite" or "postgresql"

 protected:
  virtual void begin() = 0;
  virtual std::vector<Row> run(const std::string& sql, const std::vector<std::string>& params) = 0;
};

//! Opens "sqlite:PATH" (created if absent) or "postgresql://…" / "postgres://…" and brings its
//! schema up to date. InputError for another form or a database that cannot be opened.
std::unique_ptr<Store> open_store(const std::string& url);

//! The schema version a store holds after open_store() (the number of migrations applied).
int schema_version(Store& store);

}  // namespace tracecast::registry::detail
