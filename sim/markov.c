/* sim/markov.c - the closed form the simulator is checked against: a
 * continuous-time Markov chain on a block's usable fragments i (k + m
 * down to k - 1, absorbing). From i, one is lost at rate i * lambda
 * (independent failures); below k + m the block is rebuilt to k + m at
 * rate mu (peerfs repairs every missing fragment of a block in one job).
 *
 * T_i, the mean time to absorption from i, satisfies
 *   T_i = (1 + i lambda T_{i-1} + mu T_n) / (i lambda + mu),  k <= i < n
 *   T_n = (1 + n lambda T_{n-1}) / (n lambda),  T_{k-1} = 0.
 * Written T_i = a_i + b_i T_n, with c_i = 1 - b_i carried on its own so
 * that tiny loss rates (c_i ~ 1e-30) keep their precision. */
#include <math.h>

#include "sim/sim.h"

double
sim_markov_mttdl(int k, int m, double lambda, double mu)
{
	int n = k + m;
	long double a = 0, c = 1;	/* T_{k-1} = 0: a = 0, b = 0 */

	if (k < 1 || m < 0 || n > SIM_MODEL_MAX || lambda <= 0 || mu < 0)
		return NAN;
	for (int i = k; i < n; i++) {
		long double il = (long double)i * lambda, d = il + mu;
		a = (1 + il * a) / d;
		c = il * c / d;
	}
	/* T_n = (1/(n lambda) + a_{n-1}) / c_{n-1} */
	long double t = (1.0L / ((long double)n * lambda) + a) / c;
	return t > (long double)HUGE_VAL ? HUGE_VAL : (double)t;
}
