#include "router/whitening.h"

#include <Eigen/Dense>
#include <cmath>

#include "core/error.h"

namespace tokenlora {

RouterWhitening FitWhitening(const std::vector<TaskRows>& tasks, size_t dim, double lambda) {
  TL_CHECK(!tasks.empty() && dim > 0 && lambda > 0 && lambda <= RouterWhitening::kMaxLambda);
  using Matrix = Eigen::MatrixXd;
  using RowsF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Index d = static_cast<Eigen::Index>(dim);
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(d);
  Matrix within = Matrix::Zero(d, d);
  for (const TaskRows& t : tasks) {
    TL_CHECK(t.n > 0 && t.rows.size() == t.n * dim);
    const Matrix x =
        Eigen::Map<const RowsF>(t.rows.data(), static_cast<Eigen::Index>(t.n), d).cast<double>();  // [n, dim]
    const Eigen::RowVectorXd centroid = x.colwise().mean();
    const Matrix centred = x.rowwise() - centroid;
    within.noalias() += (centred.transpose() * centred) / static_cast<double>(t.n);
    mean += centroid.transpose();
  }
  const double n_tasks = static_cast<double>(tasks.size());
  mean /= n_tasks;
  within /= n_tasks;
  within.diagonal().array() += lambda * within.trace() / static_cast<double>(d);
  const Eigen::SelfAdjointEigenSolver<Matrix> eigen(within);
  TL_CHECK_MSG(eigen.info() == Eigen::Success, "eigendecomposition of the within-task covariance failed");
  // S + ridge is positive definite: its eigenvalues are at least the ridge.
  const Eigen::VectorXd inv_sqrt = eigen.eigenvalues().cwiseMax(1e-300).cwiseSqrt().cwiseInverse();
  const Matrix w = eigen.eigenvectors() * inv_sqrt.asDiagonal() * eigen.eigenvectors().transpose();
  RouterWhitening out;
  out.lambda = lambda;
  out.mean.resize(dim);
  out.matrix.resize(dim * dim);
  for (Eigen::Index i = 0; i < d; ++i) {
    out.mean[static_cast<size_t>(i)] = static_cast<float>(mean(i));
    // Symmetrised: both halves of the file's matrix are the same floats.
    for (Eigen::Index j = 0; j < d; ++j)
      out.matrix[static_cast<size_t>(i) * dim + static_cast<size_t>(j)] =
          static_cast<float>(0.5 * (w(i, j) + w(j, i)));
  }
  return out;
}

namespace {

std::vector<float> WhitenScaled(const RouterWhitening& wh, std::span<const float> x, double scale) {
  const size_t dim = wh.mean.size();
  TL_CHECK(x.size() == dim && wh.matrix.size() == dim * dim);
  std::vector<double> centred(dim);
  for (size_t j = 0; j < dim; ++j) centred[j] = x[j] * scale - wh.mean[j];
  std::vector<float> out(dim);
  for (size_t i = 0; i < dim; ++i) {
    const float* row = wh.matrix.data() + i * dim;
    double acc = 0;
    for (size_t j = 0; j < dim; ++j) acc += double{row[j]} * centred[j];
    out[i] = static_cast<float>(acc);
  }
  return out;
}

}  // namespace

std::vector<float> Whiten(const RouterWhitening& wh, std::span<const float> x) { return WhitenScaled(wh, x, 1.0); }

std::vector<float> WhitenUnit(const RouterWhitening& wh, std::span<const float> x) {
  double sq = 0;
  for (float v : x) sq += double{v} * v;
  return WhitenScaled(wh, x, sq > 0 ? 1.0 / std::sqrt(sq) : 0.0);
}

}  // namespace tokenlora
